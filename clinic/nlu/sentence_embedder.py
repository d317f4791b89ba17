"""Rasa NLU component: each message's sentence embedding, for the components after it.

Runs once per message, before the intent classifier and the safety layer, which both read
what it sets (never part of the parse Rasa returns):

- ``sentence_embedding``: the vector of the whole text (``clinic.nlu.sentence_embeddings``);
- ``sentence_parts``: when the text is long (``PARTS_FROM_CHARS``) and has more than one
  sentence, each sentence and its vector (a risk said in one sentence of a long message must
  not be averaged away). A short message is read whole: encoding its sentences too would
  cost ~15 ms more, and its words are few enough for the whole vector and the n-grams.

Texts in Rasa's intent syntax (``/affirm``: a button's payload, never visitor text: the web
app refuses it from visitors) are not encoded: Rasa's RegexMessageHandler decides them.
At training time every example is encoded in batches.
"""

from typing import Any, Dict, List, Text, Tuple

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.nlu.sentence_embeddings import VARIANT, encoder, sentences

SENTENCE_EMBEDDING = "sentence_embedding"
SENTENCE_PARTS = "sentence_parts"
PARTS_FROM_CHARS = 120

Parts = List[Tuple[Text, np.ndarray]]


def is_intent_syntax(text: Text) -> bool:
    return text.startswith("/")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceEmbedder(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # In config.yml too: Rasa keeps a component's output by its config, so a change of the
        # weights' form there makes it encode the training data again.
        return {"weights": VARIANT}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["tensorflow", "tokenizers", "transformers"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEmbedder":
        weights = config.get("weights", VARIANT)
        if weights != VARIANT:
            raise ValueError(f"SentenceEmbedder: weights {weights!r} in config.yml, but this code runs {VARIANT!r}")
        return cls()

    def __init__(self) -> None:
        self._encoder = encoder()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        examples = [m for m in training_data.training_examples if m.get(TEXT)]
        vectors = self._encoder.encode([m.get(TEXT) for m in examples])
        for message, vector in zip(examples, vectors):
            message.set(SENTENCE_EMBEDDING, vector)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text or is_intent_syntax(text):
                continue
            message.set(SENTENCE_EMBEDDING, self._encoder.encode_one(text))
            parts = sentences(text) if len(text) >= PARTS_FROM_CHARS else []
            if len(parts) > 1:
                message.set(SENTENCE_PARTS, list(zip(parts, self._encoder.encode(parts))))
        return messages
