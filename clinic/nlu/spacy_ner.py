"""Rasa NLU component: one spaCy pass per message, with only the pipes the assistant uses.

It takes the place of Rasa's SpacyNLP + SpacyTokenizer + SpacyEntityExtractor, which together
run en_core_web_sm twice on every message (SpacyNLP on the lower-cased text, the extractor
again on the original text, because NER needs the casing), each time with the tagger,
attribute ruler, lemmatizer and their shared tok2vec, none of which anything here reads.
Profiled on the bench's visitors that was about 12 ms of a turn's NLU; this component does
it in one pass of the named-entity recogniser alone (en_core_web_sm's NER has its own
tok2vec, so its entities are the same) plus the tokenizer.

For each message it sets what those three components gave the rest of the pipeline:

- the spaCy doc of the lower-cased text (``text_spacy_doc``, as SpacyNLP with
  ``case_sensitive: false`` made it) for the crisis safety net's token patterns: the tokenizer
  alone, since the patterns read only the tokens' text (spaCy's tokenizer exceptions are
  case-sensitive, so the text is lower-cased as before);
- the named entities of the configured ``dimensions`` (GPE, DATE, PERSON, CARDINAL) found by
  NER in the original text (NER needs the casing), in the form Rasa's SpacyEntityExtractor
  gives them.

Nothing in the pipeline reads Rasa tokens or spaCy features (the intent classifier works on
the text), so no Rasa tokenizer is needed.
"""

from functools import lru_cache
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.nlu import ner_tok2vec
from clinic.settings import patches_enabled


def load_spacy(model: Text, pipes: Tuple[Text, ...]) -> Any:
    """The spaCy model with only these pipes enabled (loaded once per process and per state of the
    switch), its NER computing its token vectors directly (``clinic.nlu.ner_tok2vec``: the same
    vectors) unless ``CLINIC_RASA_PATCHES=0`` (then thinc's own forward, as for every patch)."""
    return _load_spacy(model, pipes, patches_enabled())


@lru_cache(maxsize=None)
def _load_spacy(model: Text, pipes: Tuple[Text, ...], direct: bool) -> Any:
    import spacy

    nlp = spacy.load(model, enable=list(pipes))
    if "ner" in pipes and direct:
        ner_tok2vec.install(nlp)
    return nlp


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class SpacyNER(GraphComponent, EntityExtractorMixin):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"model": None, "pipes": ["ner"], "dimensions": None, "case_sensitive": False}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["spacy"]

    def __init__(self, config: Dict[Text, Any]) -> None:
        if not config.get("model"):
            raise ValueError("SpacyNER: set `model` (the spaCy model's name or folder) in config.yml")
        self._config = config
        self._nlp = load_spacy(str(config["model"]), tuple(config["pipes"]))
        self._pipes = [pipe for _, pipe in self._nlp.pipeline]
        dimensions = config.get("dimensions")
        self._dimensions: Optional[set] = set(dimensions) if dimensions else None
        self._case_sensitive = bool(config.get("case_sensitive"))

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SpacyNER":
        return cls({**cls.get_default_config(), **config})

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data  # nothing trained reads spaCy docs

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            message.set(SPACY_DOCS[TEXT], self._nlp.make_doc(text if self._case_sensitive else text.lower()))
            entities = self._ner_entities(text)
            if entities:
                message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
        return messages

    def _ner_entities(self, text: Text) -> List[Dict[Text, Any]]:
        """The entities of ``nlp(text)``, the enabled pipes called directly (spaCy's
        ``Language.__call__`` adds only its error handling and options around them)."""
        doc = self._nlp.make_doc(text)
        for pipe in self._pipes:
            doc = pipe(doc)
        return self.add_extractor_name(self._entities(doc))

    def _entities(self, doc: Any) -> List[Dict[Text, Any]]:
        return [
            {
                ENTITY_ATTRIBUTE_TYPE: ent.label_,
                ENTITY_ATTRIBUTE_VALUE: ent.text,
                ENTITY_ATTRIBUTE_START: ent.start_char,
                ENTITY_ATTRIBUTE_CONFIDENCE: None,
                ENTITY_ATTRIBUTE_END: ent.end_char,
            }
            for ent in doc.ents
            if self._dimensions is None or ent.label_ in self._dimensions
        ]
