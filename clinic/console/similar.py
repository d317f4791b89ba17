"""Messages grouped by what they mean, for the review page: one label can fix a group at once.

Each message is a sentence embedding (``clinic.nlu.sentence_embeddings``: unit vectors, so a
dot product is the cosine). Greedy grouping in one pass, in the order given: a message joins
the group whose centroid (the normalised mean of its members) is closest, when the cosine is
``THRESHOLD`` or more, else it starts a group. Measured with this model: paraphrases of one
question mostly score 0.5 to 0.9 ("what's the price per month" / "how much is it per month"
0.90, "how much does it cost" / "how expensive is the treatment" 0.56), different questions
mostly under 0.4; an idiom ("how much will this set me back", 0.33 to 0.42 with the others)
can stay alone, and close neighbours can meet ("how long does a session last" / "how long do
the effects last" 0.58): a group is a proposal, and the person unticks what does not belong.
Groups come back largest first (then in order of their first message).
"""

from typing import List, Sequence

import numpy as np

THRESHOLD = 0.5


def group(vectors: np.ndarray, threshold: float = THRESHOLD) -> List[List[int]]:
    """Indexes of ``vectors`` (one row each, unit length) in groups of similar meaning."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        return []
    groups: List[List[int]] = []
    sums: List[np.ndarray] = []
    for i, v in enumerate(vectors):
        if sums:
            centroids = np.vstack(sums)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
            scores = centroids @ v
            best = int(np.argmax(scores))
            if scores[best] >= threshold:
                groups[best].append(i)
                sums[best] = sums[best] + v
                continue
        groups.append([i])
        sums.append(v.copy())
    order = sorted(range(len(groups)), key=lambda g: (-len(groups[g]), groups[g][0]))
    return [groups[g] for g in order]


def group_texts(texts: Sequence[str], embed, threshold: float = THRESHOLD) -> List[List[int]]:
    """``group`` of the texts' vectors (``embed``: texts -> an array of unit vectors)."""
    if not texts:
        return []
    return group(embed(list(texts)), threshold)
