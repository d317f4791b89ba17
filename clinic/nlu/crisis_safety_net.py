"""Rasa NLU component: the crisis safety net behind the classifier.

Runs last in the pipeline. When the patterns of
``clinic.safety.crisis_patterns`` find crisis language, or when the classifier
ranked ``crisis`` near the top but fell back for low confidence, the message's
intent becomes ``crisis``: recall comes before precision.
"""

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from clinic.safety.crisis_patterns import CrisisDetector

CRISIS = "crisis"
FALLBACK = "nlu_fallback"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class CrisisSafetyNet(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # A fallback whose runner-up is `crisis` at this confidence or more
        # becomes `crisis`.
        return {"fallback_crisis_threshold": 0.2}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._threshold = float(config.get("fallback_crisis_threshold", 0.2))
        self._detector: Optional[CrisisDetector] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CrisisSafetyNet":
        return cls(config)

    def _detector_for(self, doc: Any) -> CrisisDetector:
        if self._detector is None or self._detector.vocab is not doc.vocab:
            self._detector = CrisisDetector(doc.vocab)
        return self._detector

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            reason = self._crisis_reason(message)
            if reason:
                _set_crisis(message, reason)
        return messages

    def _crisis_reason(self, message: Message) -> Optional[Text]:
        doc = message.get(SPACY_DOCS[TEXT])
        if doc is not None:
            match = self._detector_for(doc).find(doc)
            if match:
                return f"pattern:{match.rule}"
        intent = message.get(INTENT) or {}
        if intent.get("name") == FALLBACK:
            for ranked in message.get(INTENT_RANKING_KEY) or []:
                if ranked.get("name") == CRISIS and ranked.get("confidence", 0) >= self._threshold:
                    return "classifier:low_confidence"
        return None


def _set_crisis(message: Message, reason: Text) -> None:
    ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != CRISIS]
    crisis = {"name": CRISIS, "confidence": 1.0}
    message.set(INTENT, crisis, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [crisis] + ranking, add_to_output=True)
    message.set("crisis_safety_net", reason, add_to_output=True)
