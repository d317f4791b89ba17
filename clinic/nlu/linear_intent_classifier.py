"""Rasa NLU component: one linear classifier for the intents and the FAQ topics.

Measured on this project's data (docs/UNDERSTANDING.md, "Held-out figures"), a linear model over word and
character n-grams and the message's sentence embedding (``clinic.nlu.linear_model`` says how
it is built, calibrated and stored) understands unseen visitor wording better than DIET plus
Rasa's ResponseSelector, and trains in seconds instead of minutes: the assistant has a few
thousand short examples and en_core_web_sm has no word vectors.

It classifies every message among all labels at once (``greet``, ..., ``faq/pricing``, ...)
and writes its result the way Rasa's own components do: ``intent`` and ``intent_ranking`` for
the base intents, and for the retrieval intent the ``response_selector`` entry with
``intent_response_key`` and ``utter_action``. Confidences are calibrated probabilities, so
``FallbackClassifier`` turns an unsure prediction into ``nlu_fallback`` at a threshold that
means something, and the parse carries ``did_you_mean``: the topics likely enough to offer as
buttons when the assistant is unsure (``did_you_mean_min``, at most ``did_you_mean_max``).

The safety layer's intents (``crisis``, ``urgent_medical``: ``exclude_intents``) are not among
its labels: the safety layer (``clinic.nlu.safety_layer``), after it, decides those alone.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
from sklearn.pipeline import Pipeline

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

from clinic.nlu.linear_model import (
    DEFAULTS,
    LinearModel,
    decision_scores,
    fit,
    fit_temperature,
    out_of_fold_scores,
)
from clinic.nlu.sentence_embedder import SENTENCE_EMBEDDING, is_intent_syntax
from clinic.nlu.sentence_embeddings import DIMENSIONS

logger = logging.getLogger(__name__)

RANKING_LENGTH = 10
RESPONSES_FILE = "responses.json"
DID_YOU_MEAN = "did_you_mean"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DEFAULTS,
            # labels left to other components (the safety layer)
            "exclude_intents": ["crisis", "urgent_medical"],
            "retrieval_intent": "faq",
            # topics offered as "did you mean" buttons: those at this confidence or more, the likeliest first
            "did_you_mean_min": 0.1,
            "did_you_mean_max": 3,
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

    def _embeddings(self, messages: List[Message]) -> Optional[np.ndarray]:
        if float(self.config["sentence_embedding_weight"]) == 0:
            return None
        vectors = [m.get(SENTENCE_EMBEDDING) for m in messages]
        if any(v is None for v in vectors):
            raise ValueError("LinearIntentClassifier: sentence_embedding_weight is set, but a training example has "
                             "no sentence embedding: put clinic.nlu.sentence_embedder.SentenceEmbedder before it")
        return np.array(vectors, dtype=np.float32)

    def train(self, training_data: TrainingData) -> Resource:
        excluded = set(self.config["exclude_intents"])
        messages = [  # examples in Rasa's intent syntax (a button's payload) are Rasa's to read
            m for m in training_data.intent_examples
            if m.get(TEXT) and not is_intent_syntax(m.get(TEXT)) and self._label(m) and m.get(INTENT) not in excluded
        ]
        labels = [self._label(m) for m in messages]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier needs at least two labels; not trained")
            return self._resource
        texts = [m.get(TEXT) for m in messages]
        embeddings = self._embeddings(messages)
        weight = float(self.config["sentence_embedding_weight"])
        pipeline = fit(self.config, texts, labels, embeddings)
        classes = pipeline.named_steps["svc"].classes_
        held_out = out_of_fold_scores(self.config, texts, labels, embeddings, classes)
        temperature = fit_temperature(held_out, np.searchsorted(classes, labels))
        dense = DIMENSIONS if embeddings is not None else 0
        self.model = LinearModel.from_pipeline(pipeline, dense, weight, temperature)
        retrieval = self.config["retrieval_intent"]
        self.responses = {
            name: value for name, value in training_data.responses.items() if name.startswith(f"utter_{retrieval}/")
        }
        self.persist(check=(pipeline, texts, embeddings))
        return self._resource

    def persist(self, check: Optional[Tuple[Pipeline, List[Text], Optional[np.ndarray]]] = None) -> None:
        """Writes the model; ``check``: the trained pipeline, texts and embeddings, which the
        model read back must score exactly as the pipeline does."""
        assert self.model is not None
        with self._model_storage.write_to(self._resource) as model_dir:
            self.model.save(model_dir)
            (model_dir / RESPONSES_FILE).write_text(json.dumps(self.responses), encoding="utf-8")
            if check is not None:
                pipeline, texts, embeddings = check
                step = max(1, len(texts) // 300)
                sample = texts[::step]
                vectors = embeddings[::step] if embeddings is not None else None
                stored = LinearModel.load(self.config, model_dir)
                expected = decision_scores(pipeline, sample, vectors, stored.weight)
                one_by_one = [stored.scores(t, None if vectors is None else v)
                              for t, v in zip(sample, vectors if vectors is not None else [None] * len(sample))]
                if not (np.array_equal(stored.classes_, pipeline.named_steps["svc"].classes_.astype(str))
                        and np.allclose(stored.decision_function(sample, vectors), expected, rtol=0, atol=1e-9)
                        and np.allclose(one_by_one, expected, rtol=0, atol=1e-9)):
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
        except (ValueError, FileNotFoundError, KeyError):
            logger.warning("LinearIntentClassifier: no trained model found; returning an untrained one")
            return cls.create(config, model_storage, resource, execution_context)
        return cls(config, model_storage, resource, model, responses)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if self.model is None or not message.get(TEXT):
                continue
            self._classify(message)
        return messages

    def predict_labels(self, text: Text, embedding: Optional[np.ndarray] = None) -> List[Tuple[Text, float]]:
        """Every label with its calibrated confidence, most likely first."""
        assert self.model is not None
        confidences = self.model.confidences(self.model.scores(text, embedding))
        order = np.argsort(-confidences).tolist()
        classes = self.model.class_names
        confidence = confidences.tolist()
        return [(classes[i], confidence[i]) for i in order]

    def _classify(self, message: Message) -> None:
        ranked = self.predict_labels(message.get(TEXT), message.get(SENTENCE_EMBEDDING))
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
        floor = float(self.config["did_you_mean_min"])
        likely = [
            {"topic": key.split("/", 1)[1], "confidence": c} for key, c in topics[: int(self.config["did_you_mean_max"])]
            if c >= floor
        ]
        message.set(DID_YOU_MEAN, likely, add_to_output=True)
