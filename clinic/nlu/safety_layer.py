"""Rasa NLU component: the safety layer, last in the pipeline, over every other intent.

For each message it runs ``clinic.safety.layer`` (the crisis patterns on the spaCy doc
``SpacyNER`` made, the safety classifier on the text and the sentence embeddings
``SentenceEmbedder`` made) and writes what it found into the parse as ``safety``
(``clinic.safety.verdict``). When the outcome is ``crisis`` or ``urgent_medical`` it becomes
the message's intent (confidence 1.0, first in the ranking), whatever the classifier or the
fallback said; the response selector's topic stays, so a check-in can answer the question too.

Training: the ``crisis`` and ``urgent_medical`` examples of the training data (the banks in
``data/safety/``, a category in each block's metadata), every other intent's examples (as
``none``, the intent or FAQ topic as their kind), and the hard negatives in the bank folder (``bank``: ``hard_negatives*.yml``, read
here; their contents are in the component's fingerprint, so a change retrains it).
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
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
from clinic.nlu.sentence_embedder import SENTENCE_EMBEDDING, SENTENCE_PARTS, is_intent_syntax
from clinic.nlu.sentence_embeddings import DIMENSIONS, encoder
from clinic.safety import bank
from clinic.safety.classifier import SafetyModel, label_of
from clinic.safety.crisis_patterns import CrisisDetector
from clinic.safety.layer import SafetyLayer, Thresholds

logger = logging.getLogger(__name__)

SAFETY = "safety"
TRAINING_FILE = "safety_training.json"


def _root() -> Path:
    return Path(__file__).resolve().parents[2]


def bank_folder(config: Dict[Text, Any]) -> Path:
    folder = Path(config["bank"])
    return folder if folder.is_absolute() else _root() / folder


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SafetyLayerComponent(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DEFAULTS,
            "class_weight": "balanced",
            # the folder of the hard negatives (hard_negatives*.yml)
            "bank": "data/safety",
            # thresholds on the classifier's calibrated probabilities (clinic.safety.layer)
            "takeover_threshold": Thresholds.takeover,
            "takeover_sentence_threshold": Thresholds.takeover_sentence,
            "check_in_threshold": Thresholds.check_in,
            "check_in_sentence_threshold": Thresholds.check_in_sentence,
            "urgent_threshold": Thresholds.urgent,
            "footer_threshold": Thresholds.footer,
            "distress_threshold": Thresholds.distress,
            "settled_threshold": Thresholds.settled,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "spacy"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[str]:
        folder = bank_folder({**cls.get_default_config(), **config})
        return bank.fingerprint(bank.negative_files(folder))

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 model: Optional[LinearModel] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self.thresholds = Thresholds(
            takeover=float(self.config["takeover_threshold"]),
            takeover_sentence=float(self.config["takeover_sentence_threshold"]),
            check_in=float(self.config["check_in_threshold"]),
            check_in_sentence=float(self.config["check_in_sentence_threshold"]),
            urgent=float(self.config["urgent_threshold"]),
            footer=float(self.config["footer_threshold"]),
            distress=float(self.config["distress_threshold"]),
            settled=float(self.config["settled_threshold"]),
        )
        self.layer = SafetyLayer(SafetyModel(model) if model is not None else None, None, self.thresholds)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SafetyLayerComponent":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples: List[bank.Example] = []
        vectors: List[np.ndarray] = []
        for message in training_data.intent_examples:
            text, intent = message.get(TEXT), message.get(INTENT)
            if not text or is_intent_syntax(text):
                continue
            if intent in bank.RISK_INTENTS:
                category = ((message.get("metadata") or {}).get("intent") or {}).get("category") or ""
                examples.append(bank.Example(text, intent, category))
            else:  # the intent as the kind: each weighs like a risk category (see clinic.safety.classifier)
                examples.append(bank.Example(text, bank.NONE, message.get(INTENT_RESPONSE_KEY) or intent))
            vectors.append(message.get(SENTENCE_EMBEDDING))
        negatives = bank.load_training_negatives(bank_folder(self.config))
        examples += negatives
        if any(v is None for v in vectors):
            raise ValueError("SafetyLayerComponent needs clinic.nlu.sentence_embedder.SentenceEmbedder before it")
        embeddings = np.vstack([np.array(vectors, dtype=np.float32).reshape(-1, DIMENSIONS),
                                encoder().encode([e.text for e in negatives])])
        texts = [e.text for e in examples]
        labels = [label_of(e) for e in examples]
        pipeline = fit(self.config, texts, labels, embeddings)
        classes = pipeline.named_steps["svc"].classes_
        held_out = out_of_fold_scores(self.config, texts, labels, embeddings, classes)
        temperature = fit_temperature(held_out, np.searchsorted(classes, labels))
        weight = float(self.config["sentence_embedding_weight"])
        self.model = LinearModel.from_pipeline(pipeline, DIMENSIONS, weight, temperature)
        with self._model_storage.write_to(self._resource) as model_dir:
            self.model.save(model_dir)
            (model_dir / TRAINING_FILE).write_text(json.dumps({
                "examples": len(texts), "labels": sorted(set(labels)), "temperature": temperature,
            }), encoding="utf-8")
            stored = LinearModel.load(self.config, model_dir)
            sample = slice(None, None, max(1, len(texts) // 300))
            expected = decision_scores(pipeline, texts[sample], embeddings[sample], weight)
            if not np.allclose(stored.decision_function(texts[sample], embeddings[sample]), expected, rtol=0, atol=1e-9):
                raise RuntimeError("SafetyLayerComponent: the stored model does not score as the trained one")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "SafetyLayerComponent":
        config = {**cls.get_default_config(), **config}
        try:
            with model_storage.read_from(resource) as model_dir:
                model = LinearModel.load(config, model_dir)
        except (ValueError, FileNotFoundError, KeyError):
            logger.warning("SafetyLayerComponent: no trained model found; the patterns alone decide")
            model = None
        return cls(config, model_storage, resource, model)

    def _layer_for(self, doc: Any) -> SafetyLayer:
        """The layer, its patterns built for the vocab of the spaCy docs it is given."""
        detector = self.layer.detector
        if doc is not None and (detector is None or detector.vocab is not doc.vocab):
            self.layer.detector = CrisisDetector(doc.vocab)
        return self.layer

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text or is_intent_syntax(text):
                continue
            doc = message.get(SPACY_DOCS[TEXT])
            intent = (message.get(INTENT) or {}).get("name")
            verdict = self._layer_for(doc).judge(
                text, doc, message.get(SENTENCE_EMBEDDING), message.get(SENTENCE_PARTS) or (), intent
            )
            message.set(SAFETY, verdict.as_dict(), add_to_output=True)
            if verdict.outcome in bank.RISK_INTENTS:
                ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != verdict.outcome]
                top = {"name": verdict.outcome, "confidence": 1.0}
                message.set(INTENT, top, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)
        return messages
