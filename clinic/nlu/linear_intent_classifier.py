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
"""

import json
import logging
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


class LinearModel:
    """What prediction needs from the trained pipeline: its two vectorizers, and the
    classifier's weights (``LinearSVC.decision_function`` is ``X @ coef.T + intercept``)."""

    def __init__(self, vectorizers: List[TfidfVectorizer], coef: np.ndarray, intercept: np.ndarray,
                 classes: np.ndarray) -> None:
        self.vectorizers = vectorizers
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        self.classes_ = classes

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
                if not (np.array_equal(stored.classes_, pipeline.classes_.astype(str))
                        and np.allclose(stored.decision_function(sample), pipeline.decision_function(sample),
                                        rtol=0, atol=1e-9)):
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
        scores = self.model.decision_function([text])[0]
        confidences = softmax(scores, float(self.config["confidence_scale"]))
        order = np.argsort(-confidences)
        classes = self.model.classes_
        return [(str(classes[i]), float(confidences[i])) for i in order]

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
