"""Rasa NLU component: one linear classifier for the intents and the FAQ topics.

Measured on this project's data (README, "Held-out NLU figures"), a linear
support-vector classifier over word (1-2) and character (2-5) n-gram TF-IDF
features understands unseen visitor wording better than DIET plus Rasa's
ResponseSelector, and trains in seconds instead of minutes: the assistant has
a few thousand short examples and en_core_web_sm has no word vectors.

It classifies every message among all labels at once (``greet``, ...,
``faq/pricing``, ...) and writes its result the way Rasa's own components do:
``intent`` and ``intent_ranking`` for the base intents, and for the retrieval
intent the ``response_selector`` entry with ``intent_response_key`` and
``utter_action`` that ``utter_faq`` reads. Confidences are a softmax of the
decision scores, so ``FallbackClassifier`` can turn an unsure prediction into
``nlu_fallback``.

The trained model is stored as plain data: each vectorizer's vocabulary (JSON)
and idf weights, the classifier's weights and labels (a NumPy ``.npz`` read
with ``allow_pickle=False``). Loading it runs no unpickling, and needs neither
pickle nor skops: importing skops alone took about 5 s of the Rasa server's
start (it scans every loaded module; README, "Performance"). The stored model
is checked against the trained one when it is written.

A message is scored without sklearn's ``transform`` and scipy's sparse matrices
(``LinearModel.scores``): for one short text their input checks and matrix
building cost about 1.3 ms, the arithmetic a few microseconds. The same
numbers are computed from the same stored arrays, with the same floating-point
operations in the same order, so the scores are bit for bit those of
``LinearModel.decision_function`` (sklearn's path, kept as the reference:
tests/test_nlu_equivalence.py compares the two on all the project's texts).
"""

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

RANKING_LENGTH = 10
MODEL_FILE = "linear_model.npz"
VOCABULARY_FILE = "vocabularies.json"
RESPONSES_FILE = "responses.json"


def build_pipeline(config: Dict[Text, Any]) -> Pipeline:
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
            ("svc", LinearSVC(C=config["C"], random_state=config["random_seed"])),
        ]
    )


def _vectorizers(config: Dict[Text, Any]) -> List[TfidfVectorizer]:
    return [v for _, v in build_pipeline(config).named_steps["features"].transformer_list]


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
    """What prediction needs from the trained pipeline: its two vectorizers, and the
    classifier's weights (``LinearSVC.decision_function`` is ``X @ coef.T + intercept``)."""

    def __init__(self, vectorizers: List[TfidfVectorizer], coef: np.ndarray, intercept: np.ndarray,
                 classes: np.ndarray) -> None:
        self.vectorizers = vectorizers
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        self.classes_ = classes
        self.class_names = [str(c) for c in classes]
        offsets = np.cumsum([0] + [len(v.vocabulary_) for v in vectorizers])
        self._features = [TfidfFeatures(v, int(o)) for v, o in zip(vectorizers, offsets)]

    def scores(self, text: Text) -> np.ndarray:
        """``decision_function([text])[0]``, the same floats, computed directly.

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
        return np.cumsum(products, axis=0)[-1] + self.intercept

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> "LinearModel":
        svc = pipeline.named_steps["svc"]
        vectorizers = [v for _, v in pipeline.named_steps["features"].transformer_list]
        return cls(vectorizers, svc.coef_, svc.intercept_, svc.classes_)

    def decision_function(self, texts: List[Text]) -> np.ndarray:
        features = sp.hstack([v.transform(texts) for v in self.vectorizers], format="csr")
        return np.asarray(features @ self.coef_t) + self.intercept

    def save(self, model_dir: Path) -> None:
        vocabularies = [{term: int(i) for term, i in v.vocabulary_.items()} for v in self.vectorizers]
        (model_dir / VOCABULARY_FILE).write_text(json.dumps(vocabularies), encoding="utf-8")
        idf = {f"idf_{n}": v.idf_ for n, v in enumerate(self.vectorizers)}
        np.savez(model_dir / MODEL_FILE, coef_t=self.coef_t, intercept=self.intercept,
                 classes=self.classes_.astype(str), **idf)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_dir: Path) -> "LinearModel":
        vocabularies = json.loads((model_dir / VOCABULARY_FILE).read_text(encoding="utf-8"))
        with np.load(model_dir / MODEL_FILE, allow_pickle=False) as arrays:
            vectorizers = []
            for n, (blank, vocabulary) in enumerate(zip(_vectorizers(config), vocabularies)):
                vectorizer = blank.set_params(vocabulary=vocabulary)
                vectorizer.idf_ = arrays[f"idf_{n}"]  # also fixes the vocabulary (sklearn's setter)
                vectorizers.append(vectorizer)
            return cls(vectorizers, arrays["coef_t"].T, arrays["intercept"], arrays["classes"])


def softmax(scores: np.ndarray, scale: float) -> np.ndarray:
    z = scale * (scores - scores.max())
    e = np.exp(z)
    return e / e.sum()


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 0.5,
            "word_ngrams": [1, 2],
            "char_ngrams": [2, 5],
            # softmax(scale * decision score): how sharply confidence falls
            # off when two labels score alike
            "confidence_scale": 8.0,
            "retrieval_intent": "faq",
            "random_seed": 4242,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LinearModel] = None,
        responses: Optional[Dict[Text, List[Dict[Text, Any]]]] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self.responses = responses or {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LinearIntentClassifier":
        return cls(config, model_storage, resource)

    @staticmethod
    def _label(message: Message) -> Optional[Text]:
        return message.get(INTENT_RESPONSE_KEY) or message.get(INTENT)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            (m.get(TEXT), self._label(m))
            for m in training_data.intent_examples
            if m.get(TEXT) and self._label(m)
        ]
        if len({label for _, label in examples}) < 2:
            logger.warning("LinearIntentClassifier needs at least two labels; not trained")
            return self._resource
        texts, labels = zip(*examples)
        pipeline = build_pipeline(self.config).fit(list(texts), list(labels))
        self.model = LinearModel.from_pipeline(pipeline)
        retrieval = self.config["retrieval_intent"]
        self.responses = {
            name: value for name, value in training_data.responses.items() if name.startswith(f"utter_{retrieval}/")
        }
        self.persist(check=(pipeline, list(texts)))
        return self._resource

    def persist(self, check: Optional[Tuple[Pipeline, List[Text]]] = None) -> None:
        """Writes the model; ``check``: the trained pipeline and texts, which the model read
        back must score exactly as the pipeline does."""
        assert self.model is not None
        with self._model_storage.write_to(self._resource) as model_dir:
            self.model.save(model_dir)
            (model_dir / RESPONSES_FILE).write_text(json.dumps(self.responses), encoding="utf-8")
            if check is not None:
                pipeline, texts = check
                sample = texts[:: max(1, len(texts) // 300)]
                stored = LinearModel.load(self.config, model_dir)
                expected = pipeline.decision_function(sample)
                if not (np.array_equal(stored.classes_, pipeline.classes_.astype(str))
                        and np.allclose(stored.decision_function(sample), expected, rtol=0, atol=1e-9)
                        and np.allclose([stored.scores(t) for t in sample], expected, rtol=0, atol=1e-9)):
                    raise RuntimeError("LinearIntentClassifier: the stored model does not score as the trained one")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LinearIntentClassifier":
        config = {**cls.get_default_config(), **config}
        try:
            with model_storage.read_from(resource) as model_dir:
                model = LinearModel.load(config, model_dir)
                responses = json.loads((model_dir / RESPONSES_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("LinearIntentClassifier: no trained model found; returning an untrained one")
            return cls.create(config, model_storage, resource, execution_context)
        return cls(config, model_storage, resource, model, responses)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if self.model is None or not message.get(TEXT):
                continue
            self._classify(message)
        return messages

    def predict_labels(self, text: Text) -> List[Tuple[Text, float]]:
        """Every label with its confidence, most likely first."""
        assert self.model is not None
        confidences = softmax(self.model.scores(text), float(self.config["confidence_scale"]))
        order = np.argsort(-confidences).tolist()
        classes = self.model.class_names
        confidence = confidences.tolist()
        return [(classes[i], confidence[i]) for i in order]

    def _classify(self, message: Message) -> None:
        ranked = self.predict_labels(message.get(TEXT))
        retrieval = self.config["retrieval_intent"]

        # Base intents: a retrieval intent is as sure as its surest sub-intent.
        intents: Dict[Text, float] = {}
        for label, confidence in ranked:
            base = label.split("/", 1)[0]
            intents.setdefault(base, confidence)
        intent_ranking = [{INTENT_NAME_KEY: n, PREDICTED_CONFIDENCE_KEY: c} for n, c in intents.items()]
        message.set(INTENT, intent_ranking[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, intent_ranking[:RANKING_LENGTH], add_to_output=True)

        topics = [(label, c) for label, c in ranked if label.startswith(f"{retrieval}/")]
        if not topics:
            return
        top_key, top_confidence = topics[0]
        utter_action = f"utter_{top_key}"
        selector = message.get(RESPONSE_SELECTOR_PROPERTY_NAME, {})
        selector[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = [retrieval]
        selector[retrieval] = {
            RESPONSE_SELECTOR_PREDICTION_KEY: {
                RESPONSE_SELECTOR_RESPONSES_KEY: self.responses.get(utter_action, []),
                PREDICTED_CONFIDENCE_KEY: top_confidence,
                INTENT_RESPONSE_KEY: top_key,
                RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter_action,
            },
            RESPONSE_SELECTOR_RANKING_KEY: [
                {PREDICTED_CONFIDENCE_KEY: c, INTENT_RESPONSE_KEY: k} for k, c in topics[:RANKING_LENGTH]
            ],
        }
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selector, add_to_output=True)
