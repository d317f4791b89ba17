"""The sentence encoder (clinic/nlu/sentence_embeddings.py): all-MiniLM-L6-v2 on TensorFlow Lite."""

import sys

import numpy as np
import pytest

from clinic.nlu.sentence_embeddings import DIMENSIONS, MAX_TOKENS, VARIANT, converted_path, encoder, sentences


@pytest.fixture(scope="module")
def enc():
    return encoder()


def test_vectors_have_unit_length_and_the_model_s_dimensions(enc):
    vectors = enc.encode(["how much does it cost", "hi", "¿cuánto cuesta? 😀"])
    assert vectors.shape == (3, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_same_question_in_other_words_is_closer_than_another_question(enc):
    a, b, c = enc.encode(["how many sessions will I need",
                          "How Many Treatments Are Typically Required?",
                          "do you take insurance"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_one_text_alone_or_in_a_padded_batch_gives_the_same_vector(enc):
    texts = ["hi", "what are the side effects of the troches and how long do they last", "ok"]
    batch = enc.encode(texts)
    for text, row in zip(texts, batch):
        assert np.allclose(enc.encode_one(text), row, atol=1e-5)


def test_a_short_text_s_kept_vector_is_the_same_and_cannot_be_changed_by_a_caller(enc):
    first = enc.encode_one("Nearly every day")
    first[:] = 0.0  # a caller writing into its copy
    again = enc.encode_one("Nearly every day")
    assert np.allclose(again, enc.encode(["Nearly every day"])[0]) and np.linalg.norm(again) > 0.99


def test_a_text_longer_than_the_model_reads_is_cut_not_refused(enc):
    long = "my week has been long and I have many questions. " * 200
    assert len(enc.tokenizer.encode(long).ids) == MAX_TOKENS
    assert np.isfinite(enc.encode_one(long)).all()


def test_the_converted_model_lives_in_the_venv_named_by_its_form_and_tensorflow_s_version():
    import tensorflow as tf

    path = converted_path()
    assert path.exists() and str(path).startswith(sys.prefix)
    assert VARIANT in path.name and tf.__version__ in path.name


def test_nothing_of_transformers_is_loaded_to_encode_once_converted():
    import subprocess

    code = ("import sys; from clinic.nlu.sentence_embeddings import encoder; encoder().encode_one('hi'); "
            "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    "text, parts",
    [
        ("one sentence only", ["one sentence only"]),
        ("First one. Second one? Third!", ["First one.", "Second one?", "Third!"]),
        ("line one\nline two", ["line one", "line two"]),
        ("", []),
    ],
)
def test_sentences(text, parts):
    assert sentences(text) == parts
