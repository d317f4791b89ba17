"""A linear model over word and character n-grams and a sentence embedding, stored as plain data.

Both the intent classifier (``clinic.nlu.linear_intent_classifier``) and the safety layer's
classifier (``clinic.safety.classifier``) are this model: a linear support-vector classifier
over word (1-2) and character (2-5) n-gram TF-IDF features, which tell spellings apart and
survive typos, and the message's sentence embedding (``clinic.nlu.sentence_embeddings``),
which carries its meaning; the embedding's 384 numbers, times ``sentence_embedding_weight``,
are further columns of the same model.

Confidence means something: the decision scores become probabilities by a softmax at a
temperature fitted on held-out predictions (each training example scored by a model trained on
the other folds, ``calibration_folds``: temperature scaling, Guo et al. 2017).

The trained model is stored as plain data: each vectorizer's vocabulary (JSON) and idf
weights, the classifier's weights and labels and the temperature (a NumPy ``.npz`` read with
``allow_pickle=False``). Loading it runs no unpickling, and needs neither pickle nor skops:
importing skops alone took about 5 s of the Rasa server's start (it scans every loaded module;
docs/PERFORMANCE.md). The stored model is checked against the trained one when it is written.

A message is scored without sklearn's ``transform`` and scipy's sparse matrices
(``LinearModel.scores``): for one short text their input checks and matrix building cost
about 1.3 ms, the arithmetic a few microseconds. The n-grams' part is computed from the same
stored arrays, with the same floating-point operations in the same order as sklearn's sparse
product, so the scores are bit for bit those of ``LinearModel.decision_function`` (sklearn's
transform, kept as the reference: tests/test_nlu_equivalence.py compares the two on all the
project's texts); the embedding's part is one dot product in both.
"""

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

DEFAULTS: Dict[Text, Any] = {
    "C": 0.5,
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 5],
    # the sentence embedding's columns are multiplied by this (0: n-grams only)
    "sentence_embedding_weight": 1.0,
    # folds of the held-out predictions the temperature is fitted on
    "calibration_folds": 5,
    # "balanced": each label weighs as much as the others, however few its examples
    "class_weight": None,
    "random_seed": 4242,
}

MODEL_FILE = "linear_model.npz"
VOCABULARY_FILE = "vocabularies.json"


def build_pipeline(config: Dict[Text, Any]) -> Pipeline:
    """The n-gram vectorizers (fitted on the texts) and the classifier (fitted on their
    features and the embeddings' columns: ``fit``)."""
    token_pattern = r"(?u)\b\w+\b"  # keep one-letter words: "i", "u"
    words = TfidfVectorizer(
        lowercase=True, ngram_range=tuple(config["word_ngrams"]), token_pattern=token_pattern, sublinear_tf=True
    )
    chars = TfidfVectorizer(
        lowercase=True, analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True
    )
    return Pipeline(
        [
            ("features", FeatureUnion([("words", words), ("chars", chars)])),
            ("svc", LinearSVC(C=config["C"], class_weight=config.get("class_weight"), random_state=config["random_seed"])),
        ]
    )


def _vectorizers(config: Dict[Text, Any]) -> List[TfidfVectorizer]:
    return [v for _, v in build_pipeline(config).named_steps["features"].transformer_list]


def features(pipeline: Pipeline, texts: List[Text], embeddings: Optional[np.ndarray], weight: float) -> sp.csr_matrix:
    """The classifier's input: the n-grams' TF-IDF, then the embeddings times ``weight``."""
    ngrams = pipeline.named_steps["features"].transform(texts)
    if embeddings is None or weight == 0:
        return ngrams
    return sp.hstack([ngrams, sp.csr_matrix(weight * embeddings)], format="csr")


def fit(config: Dict[Text, Any], texts: List[Text], labels: List[Text], embeddings: Optional[np.ndarray]) -> Pipeline:
    pipeline = build_pipeline(config)
    pipeline.named_steps["features"].fit(texts)
    weight = float(config["sentence_embedding_weight"])
    pipeline.named_steps["svc"].fit(features(pipeline, texts, embeddings, weight), labels)
    return pipeline


def decision_scores(pipeline: Pipeline, texts: List[Text], embeddings: Optional[np.ndarray], weight: float) -> np.ndarray:
    return pipeline.named_steps["svc"].decision_function(features(pipeline, texts, embeddings, weight))


def fit_temperature(scores: np.ndarray, gold: np.ndarray) -> float:
    """The temperature T that makes softmax(scores / T) the likeliest for the gold labels
    (minimum negative log-likelihood: temperature scaling, Guo et al. 2017)."""

    def nll(log_t: float) -> float:
        z = scores / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(gold)), gold].mean())

    return math.exp(minimize_scalar(nll, bounds=(math.log(0.005), math.log(10.0)), method="bounded").x)


def out_of_fold_scores(config: Dict[Text, Any], texts: List[Text], labels: List[Text],
                       embeddings: Optional[np.ndarray], classes: np.ndarray) -> np.ndarray:
    """Each example's decision scores by a model trained without it (stratified folds)."""
    folds = int(config["calibration_folds"])
    scores = np.zeros((len(texts), len(classes)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config["random_seed"])
    labels_arr = np.array(labels)
    weight = float(config["sentence_embedding_weight"])
    for train_idx, test_idx in splitter.split(texts, labels_arr):
        pick = lambda idx: [texts[i] for i in idx]  # noqa: E731
        emb = (lambda idx: embeddings[idx]) if embeddings is not None else (lambda idx: None)
        pipeline = fit(config, pick(train_idx), labels_arr[train_idx].tolist(), emb(train_idx))
        fold_scores = decision_scores(pipeline, pick(test_idx), emb(test_idx), weight)
        columns = np.searchsorted(classes, pipeline.named_steps["svc"].classes_)
        scores[np.ix_(test_idx, columns)] = fold_scores
        missing = np.setdiff1d(np.arange(len(classes)), columns)
        scores[np.ix_(test_idx, missing)] = fold_scores.min() - 1.0  # a label the fold never saw
    return scores


class TfidfFeatures:
    """One fitted ``TfidfVectorizer``'s features of one text, as its ``transform`` makes them
    (``sublinear_tf``, idf, l2 norm), without building a sparse matrix.

    Returns the columns and values in the order sklearn leaves them in its matrix, which
    decides the order of the sums (the l2 norm, then the classifier's dot product):
    ``CountVectorizer`` sorts the columns, and the product with the idf diagonal
    (scipy's ``csr_matmat``) writes a row's columns last first, so descending.
    """

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        self._analyze = vectorizer.build_analyzer()  # sklearn's own: lower-casing, tokens, n-grams
        self._vocabulary: Dict[Text, int] = vectorizer.vocabulary_
        self._idf: np.ndarray = vectorizer.idf_
        self._offset = offset  # where this vectorizer's columns start among all features

    def __call__(self, text: Text) -> Tuple[List[int], List[float]]:
        counts = Counter(map(self._vocabulary.get, self._analyze(text)))
        counts.pop(None, None)  # terms out of the vocabulary
        if not counts:
            return [], []
        columns = sorted(counts, reverse=True)
        tf = np.array([counts[c] for c in columns], dtype=np.float64)
        np.log(tf, tf)  # sublinear_tf, as TfidfTransformer.transform: log(count) + 1
        tf += 1
        values = (tf * self._idf[columns]).tolist()
        squares = 0.0  # sklearn's inplace_csr_row_normalize_l2: a sum in the row's order
        for v in values:
            squares += v * v
        if squares != 0.0:
            norm = math.sqrt(squares)
            values = [v / norm for v in values]
        offset = self._offset
        return [c + offset for c in columns], values


class LinearModel:
    """What prediction needs from the trained pipeline: its two vectorizers, the classifier's
    weights (``LinearSVC.decision_function`` is ``X @ coef.T + intercept``; the last
    ``dense`` columns of ``X`` are the sentence embedding times ``weight``) and the
    temperature of its confidences."""

    def __init__(self, vectorizers: List[TfidfVectorizer], coef: np.ndarray, intercept: np.ndarray,
                 classes: np.ndarray, dense: int = 0, weight: float = 0.0, temperature: float = 1.0) -> None:
        self.vectorizers = vectorizers
        sparse_columns = coef.shape[1] - dense
        self.coef_t = np.ascontiguousarray(coef[:, :sparse_columns].T)
        self.dense_coef_t = np.ascontiguousarray(coef[:, sparse_columns:].T)
        self.dense = dense
        self.weight = weight
        self.temperature = temperature
        self.intercept = intercept
        self.classes_ = classes
        self.class_names = [str(c) for c in classes]
        offsets = np.cumsum([0] + [len(v.vocabulary_) for v in vectorizers])
        self._features = [TfidfFeatures(v, int(o)) for v, o in zip(vectorizers, offsets)]

    def _dense_part(self, embedding: Optional[np.ndarray]) -> np.ndarray:
        if not self.dense:
            return np.zeros(self.coef_t.shape[1])
        vector = np.zeros(self.dense, dtype=np.float32) if embedding is None else embedding
        return (self.weight * vector).astype(np.float64) @ self.dense_coef_t

    def ngram_scores(self, text: Text) -> np.ndarray:
        """The n-grams' part of ``decision_function([text])[0]``, the same floats, computed directly.

        scipy's sparse-times-dense product (``csr_matvecs``) starts each score at 0 and adds
        ``value * weight`` feature by feature in the matrix's order (the vectorizers' blocks
        side by side, as ``sp.hstack`` puts them): a running sum (``np.cumsum``, sequential
        by definition) over a first row of zeros and those products does the same additions.
        """
        columns: List[int] = []
        values: List[float] = []
        for features in self._features:
            c, v = features(text)
            columns += c
            values += v
        products = np.zeros((len(columns) + 1, self.coef_t.shape[1]))
        if columns:
            np.multiply(self.coef_t[columns], np.array(values)[:, None], out=products[1:])
        return np.cumsum(products, axis=0)[-1]

    def scores(self, text: Text, embedding: Optional[np.ndarray] = None) -> np.ndarray:
        return self.ngram_scores(text) + self._dense_part(embedding) + self.intercept

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, dense: int, weight: float, temperature: float) -> "LinearModel":
        svc = pipeline.named_steps["svc"]
        vectorizers = [v for _, v in pipeline.named_steps["features"].transformer_list]
        return cls(vectorizers, svc.coef_, svc.intercept_, svc.classes_, dense, weight, temperature)

    def decision_function(self, texts: List[Text], embeddings: Optional[np.ndarray] = None) -> np.ndarray:
        """The scores through sklearn's own transform (the reference for ``scores``)."""
        ngrams = sp.hstack([v.transform(texts) for v in self.vectorizers], format="csr")
        vectors = embeddings if embeddings is not None else [None] * len(texts)
        dense = np.array([self._dense_part(e) for e in vectors]).reshape(len(texts), -1)
        return np.asarray(ngrams @ self.coef_t) + dense + self.intercept

    def confidences(self, scores: np.ndarray) -> np.ndarray:
        return softmax(scores, 1.0 / self.temperature)

    def save(self, model_dir: Path) -> None:
        vocabularies = [{term: int(i) for term, i in v.vocabulary_.items()} for v in self.vectorizers]
        (model_dir / VOCABULARY_FILE).write_text(json.dumps(vocabularies), encoding="utf-8")
        idf = {f"idf_{n}": v.idf_ for n, v in enumerate(self.vectorizers)}
        np.savez(model_dir / MODEL_FILE, coef_t=self.coef_t, dense_coef_t=self.dense_coef_t,
                 intercept=self.intercept, classes=self.classes_.astype(str),
                 weight=np.array(self.weight), temperature=np.array(self.temperature), **idf)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_dir: Path) -> "LinearModel":
        vocabularies = json.loads((model_dir / VOCABULARY_FILE).read_text(encoding="utf-8"))
        with np.load(model_dir / MODEL_FILE, allow_pickle=False) as arrays:
            vectorizers = []
            for n, (blank, vocabulary) in enumerate(zip(_vectorizers(config), vocabularies)):
                vectorizer = blank.set_params(vocabulary=vocabulary)
                vectorizer.idf_ = arrays[f"idf_{n}"]  # also fixes the vocabulary (sklearn's setter)
                vectorizers.append(vectorizer)
            coef = np.hstack([arrays["coef_t"].T, arrays["dense_coef_t"].T])
            return cls(vectorizers, coef, arrays["intercept"], arrays["classes"], arrays["dense_coef_t"].shape[0],
                       float(arrays["weight"]), float(arrays["temperature"]))


def softmax(scores: np.ndarray, scale: float) -> np.ndarray:
    z = scale * (scores - scores.max())
    e = np.exp(z)
    return e / e.sum()


