"""The NLU's fast paths give exactly what the original computations give.

Every text the project has (the held-out set, the crisis phrases, the training
data, the bench's visitor texts and the buttons' payloads, and a few odd
inputs) is parsed by the trained model; each fast path is compared with the
computation it replaces (sklearn's ``transform`` for the n-grams of the intent
classifier and of the safety classifier, ``nlp(text)`` for spaCy's entities, the
crisis patterns' matcher for its precheck), down to the last bit of every float,
and the whole parse (intent, confidence, ranking, FAQ topic, entities, the
safety layer's verdict) is compared with the parse made by the original
computations.
"""

import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import yaml

from clinic.nlu import ner_tok2vec
from clinic.nlu.linear_intent_classifier import LinearIntentClassifier
from clinic.nlu.safety_layer import SafetyLayerComponent
from clinic.nlu.sentence_embeddings import encoder
from clinic.nlu.spacy_ner import SpacyNER
from clinic.safety.matcher_precheck import MatcherPrecheck
from clinic.nlu.evaluation import load_examples
from clinic.safety.bank import load_bank

ROOT = Path(__file__).resolve().parent.parent

ODD_TEXTS = [
    "?", "...", " ", "hi\n\nthere", "tab\tseparated\ttext", "ALL CAPS QUESTION ABOUT PRICING???",
    "café naïve résumé", "ÉTATS-UNIS", "ı İ ß ẞ", "emoji 😀 please", "email: jane.example@example.com",
    "a" * 300, "price " * 80, "I'm in New York City on March 3rd, 2025 with 2 kids, John Smith here",
    "/affirm", "/inform{\"state\": \"TX\"}", "asdkjh qwpoe zzxv", "123 456", "-", "don't", "ＦＵＬＬＷＩＤＴＨ",
]


def _payloads(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "payload" and isinstance(value, str):
                yield value
            else:
                yield from _payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payloads(value)


def bench_texts() -> List[str]:
    """What scripts/bench_visitors.py types: the scripts of many visitors, and the titles
    of the buttons (typed when a button is missing)."""
    from scripts import bench_visitors as bv

    visitors = bv.Visitors(seed=7)
    texts = [value for _ in range(300) for _, value in visitors.next().steps]
    texts += bv.AGES + bv.STATES + bv.CONCERNS + bv.TREATMENTS + bv.FREQUENCIES + bv.NO_ANSWERS + bv.TIMES
    texts += bv.NAMES + [n.lower().replace(" ", ".") + "@example.com" for n in bv.NAMES] + bv.PHONES
    texts += [bv.START_BUTTON, bv.REPHRASED, "Yes", "No", "Yes, contact me"]
    return texts


def training_texts() -> List[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    files = sorted((ROOT / "data" / "nlu").glob("*.yml")) + sorted((ROOT / "data" / "faq").glob("*.yml"))
    return [m.get("text") for f in files for m in load_data(str(f)).training_examples if m.get("text")]


def all_texts() -> List[str]:
    phrases = yaml.safe_load((ROOT / "tests" / "nlu" / "crisis_phrases.yml").read_text())
    texts = [t for t, _ in load_examples(ROOT / "tests" / "nlu" / "heldout.yml")]
    texts += phrases["positives"] + phrases["negatives"]
    texts += [e.text for e in load_bank(ROOT / "tests" / "safety" / "validation_bank.yml")][::3]
    texts += training_texts() + bench_texts() + ODD_TEXTS
    for f in sorted((ROOT / "domain").rglob("*.yml")) + sorted((ROOT / "data").rglob("*.yml")):
        texts += list(_payloads(yaml.safe_load(f.read_text())))
    texts += [t.upper() for t in texts[::7]] + [t.title() for t in texts[::11]]
    return list(dict.fromkeys(texts))  # each once, in a fixed order



def _node(agent: Any, component: type) -> Any:
    nodes = agent.processor.graph_runner._instantiated_nodes
    found = [n._component for name, n in nodes.items() if name.startswith("run_") and type(n._component) is component]
    assert len(found) == 1, f"{component.__name__} in the model's graph: {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def texts() -> List[str]:
    return all_texts()


@pytest.fixture(scope="module")
def classifier(agent: Any) -> LinearIntentClassifier:
    return _node(agent, LinearIntentClassifier)


@pytest.fixture(scope="module")
def spacy_ner(agent: Any) -> SpacyNER:
    return _node(agent, SpacyNER)


@pytest.fixture(scope="module")
def safety_layer(agent: Any, parse: Any) -> SafetyLayerComponent:
    parse("hello")  # the patterns are built for the first message's vocab
    return _node(agent, SafetyLayerComponent)


def test_the_corpus_is_the_projects_texts(texts):
    assert len(texts) > 3000
    assert "am i eligible?" in texts and "(212) 555-0199" in texts and "/start_prescreen" in texts


def _embedded(texts: List[str]) -> List[Any]:
    """A sample of the texts with their sentence embeddings, as the embedder gives them."""
    sample = [t for t in texts[::4] if t.strip() and not t.startswith("/")]
    return list(zip(sample, encoder().encode(sample)))


@pytest.mark.parametrize("component", ["classifier", "safety_layer"])
def test_the_scores_are_sklearns_to_the_last_bit(component, request, texts):
    """Both linear models: the direct scores are those of sklearn's transform (the n-grams) plus
    the same embedding product; the intent classifier's ranking follows from them."""
    node = request.getfixturevalue(component)
    model = node.model
    for text, embedding in _embedded(texts):
        scores = model.decision_function([text], embedding[None])[0]
        assert np.array_equal(model.scores(text, embedding), scores), text
        if component == "classifier":
            confidences = model.confidences(scores)
            expected = [(str(model.classes_[i]), float(confidences[i])) for i in np.argsort(-confidences)]
            assert node.predict_labels(text, embedding) == expected, text


def test_the_classifier_features_are_sklearns(classifier, texts):
    """Each vectorizer's features: the same columns, values and order as in sklearn's matrix
    (the order decides the sums)."""
    model = classifier.model
    for text in texts[::5]:
        for vectorizer, features in zip(model.vectorizers, model._features):
            matrix = vectorizer.transform([text])
            columns, values = features(text)
            assert [c - features._offset for c in columns] == matrix.indices.tolist(), text
            assert values == matrix.data.tolist(), text


def test_summing_in_another_order_would_be_told_apart(classifier, texts):
    """The bitwise comparison can fail: the same products summed in another order (a BLAS
    dot product) give scores equal to about 1e-15, not to the bit, for some texts."""
    model = classifier.model
    differing = 0
    for text in texts[:400]:
        columns, values = [], []
        for features in model._features:
            c, v = features(text)
            columns, values = columns + c, values + v
        other = np.array(values) @ model.coef_t[columns] + model.intercept
        expected = model.decision_function([text])[0]
        assert np.allclose(other, expected, rtol=0, atol=1e-12)
        differing += not np.array_equal(other, expected)
    assert differing > 0


@contextmanager
def thinc_forward(nlp: Any) -> Iterator[None]:
    """spaCy's NER with thinc's own tok2vec forward for a while."""
    ner_tok2vec.uninstall(nlp)
    try:
        yield
    finally:
        assert ner_tok2vec.install(nlp)


def _original_entities(component: SpacyNER, text: str) -> List[Dict[str, Any]]:
    """What the component found before: ``nlp(text)`` (used with ``thinc_forward``)."""
    return component.add_extractor_name(component._entities(component._nlp(text)))


def test_the_direct_forward_is_installed_in_the_models_spacy(spacy_ner):
    model = spacy_ner._nlp.get_pipe("ner").model.layers[0]
    assert model._func is not ner_tok2vec._THINC_FORWARDS[model.id]


def _vectors_differing(nlp: Any, direct: Any, texts: List[str]) -> List[str]:
    """The texts whose token vectors from ``direct`` are not thinc's to the last bit."""
    model = nlp.get_pipe("ner").model.layers[0]
    thinc = ner_tok2vec._THINC_FORWARDS[model.id]
    docs = [nlp.make_doc(text) for text in texts]
    return [doc.text for doc in docs if len(doc) and not ner_tok2vec._same(direct(doc), thinc(model, [doc], False)[0])]


def test_the_ner_token_vectors_are_thincs_to_the_last_bit(spacy_ner, texts):
    """Every text, embeddings computed (first order) or from the cache (the second, shuffled),
    and through the model as spaCy calls it."""
    nlp = spacy_ner._nlp
    model = nlp.get_pipe("ner").model.layers[0]
    direct = ner_tok2vec.Tok2VecForward.of(model)
    shuffled = texts[:]
    random.Random(5).shuffle(shuffled)
    assert _vectors_differing(nlp, direct, texts) == []
    assert _vectors_differing(nlp, direct, shuffled) == []
    assert 1000 < len(direct.cache) < len(texts) * 3  # a token's embedding computed once
    thinc = ner_tok2vec._THINC_FORWARDS[model.id]
    for text in texts[::10]:
        doc = nlp.make_doc(text)
        if len(doc):
            assert ner_tok2vec._same(model.predict([doc]), thinc(model, [doc], is_train=False)[0]), text


def test_a_full_or_too_small_embedding_cache_gives_the_same_vectors(spacy_ner, texts, monkeypatch):
    """A cache of 6 embeddings: forgotten and refilled again and again, and too small for a
    message of more distinct tokens (computed without it)."""
    nlp = spacy_ner._nlp
    monkeypatch.setattr(ner_tok2vec.Tok2VecForward, "CACHE_SIZE", 6)
    direct = ner_tok2vec.Tok2VecForward.of(nlp.get_pipe("ner").model.layers[0])
    sample = texts[::9]
    lengths = [len({t.text for t in nlp.make_doc(text)}) for text in sample]
    assert max(lengths) > 6 and sum(lengths) > 60
    for text in sample:
        assert _vectors_differing(nlp, direct, [text]) == [], text
        assert len(direct.cache) <= 6


def test_a_changed_bit_in_a_cached_embedding_is_told_apart(spacy_ner):
    """The comparison can fail: one cached float one step away gives other vectors."""
    nlp = spacy_ner._nlp
    direct = ner_tok2vec.Tok2VecForward.of(nlp.get_pipe("ner").model.layers[0])
    text = "I'm Jane Example from Austin, Texas."
    assert _vectors_differing(nlp, direct, [text]) == []
    row = direct.cache.rows[tuple(nlp.make_doc(text).to_array(direct.columns)[3].tolist())]
    direct.cache.matrix[row, 7] = np.nextafter(direct.cache.matrix[row, 7], np.float32(np.inf))
    assert _vectors_differing(nlp, direct, [text]) == [text]


def test_other_token_vectors_would_change_the_entities(spacy_ner, texts, monkeypatch):
    """The entity comparisons can fail: vectors a little off change some entities."""
    original = ner_tok2vec.Tok2VecForward.__call__
    noise = np.random.default_rng(0)

    def off(self: Any, doc: Any) -> Any:
        vectors = original(self, doc)
        return vectors + noise.normal(0, 0.3, vectors.shape).astype(vectors.dtype)

    sample = [text for text in texts[:1500] if spacy_ner._ner_entities(text)]
    expected = [spacy_ner._ner_entities(text) for text in sample]
    monkeypatch.setattr(ner_tok2vec.Tok2VecForward, "__call__", off)
    assert [spacy_ner._ner_entities(text) for text in sample] != expected


def test_batches_and_training_keep_thincs_forward(spacy_ner):
    nlp = spacy_ner._nlp
    model = nlp.get_pipe("ner").model.layers[0]
    thinc = ner_tok2vec._THINC_FORWARDS[model.id]
    docs = [nlp.make_doc("I'm Jane from Texas"), nlp.make_doc("no")]
    assert ner_tok2vec._same(model.predict(docs), thinc(model, docs, is_train=False)[0])
    vectors, backprop = model([docs[0]], is_train=True)
    assert vectors.shape == model.predict([docs[0]]).shape and callable(backprop)


def test_another_architecture_or_other_vectors_keep_thincs_forward(spacy_ner, monkeypatch):
    import spacy

    full = spacy.load(spacy_ner._config["model"])  # the tagger listens to the shared tok2vec
    assert ner_tok2vec.Tok2VecForward.of(full.get_pipe("tagger").model) is None
    assert ner_tok2vec.Tok2VecForward.of(full.get_pipe("ner").model.layers[0]) is not None
    original = ner_tok2vec.Tok2VecForward.__call__
    monkeypatch.setattr(ner_tok2vec.Tok2VecForward, "__call__", lambda self, doc: original(self, doc) * 1.0000001)
    model = full.get_pipe("ner").model.layers[0]
    thinc = model._func
    assert not ner_tok2vec.install(full)
    assert model._func is thinc


def test_spacy_entities_and_tokens_are_those_of_nlp(spacy_ner, texts):
    from rasa.shared.nlu.training_data.message import Message

    messages = [Message(data={"text": text}) for text in texts]
    spacy_ner.process(messages)
    with thinc_forward(spacy_ner._nlp):
        for text, message in zip(texts, messages):
            assert message.get("entities", []) == _original_entities(spacy_ner, text), text
            doc = message.get("text_spacy_doc")
            assert [t.text for t in doc] == [t.text for t in spacy_ner._nlp.make_doc(text.lower())], text
    assert sum(len(m.get("entities", [])) for m in messages) > 100


def test_the_crisis_precheck_skips_only_messages_without_a_match(safety_layer, spacy_ner, texts):
    detector = safety_layer.layer.detector
    precheck = detector.precheck
    skipped = 0
    for text in texts:
        doc = spacy_ner._nlp.make_doc(text.lower())
        if not precheck.may_match(doc):
            skipped += 1
            assert detector.matcher(doc) == [] and detector.find(doc) is None and not detector.mentions(doc), text
    assert skipped > len(texts) * 0.7  # most messages: the check is worth it


def test_the_crisis_precheck_reads_only_plain_word_lists(spacy_ner):
    from spacy.matcher import Matcher

    nlp = spacy_ner._nlp
    matcher = Matcher(nlp.vocab)
    matcher.add("plain", [[{"LOWER": {"REGEX": "^(?:(end|ending))$"}}, {"LOWER": {"REGEX": "^(?:it)$"}, "OP": "?"},
                           {"LOWER": {"REGEX": "^(?:all|everything)$"}}]])
    plain = MatcherPrecheck(matcher, ["plain"])
    assert [set(pattern) for pattern in plain.patterns] == [{frozenset({"all", "everything"}), frozenset({"end", "ending"})}]
    assert plain.may_match(nlp.make_doc("i want to end everything"))
    assert not plain.may_match(nlp.make_doc("i want to end this call"))
    assert plain.may_match(nlp.make_doc("the end\nof the call"))  # a newline: the matcher decides
    matcher.add("regex", [[{"LOWER": {"REGEX": "^kil+$"}}, {"LOWER": "myself"}]])
    both = MatcherPrecheck(matcher, ["plain", "regex"])
    assert both.patterns[1] == ()  # nothing it can read: may always match
    assert both.may_match(nlp.make_doc("hello there"))


def _parses(agent: Any, loop: Any, texts: List[str]) -> List[Any]:
    """Each text's parse, or the error it raises (a blank text: Rasa's FallbackClassifier
    finds no intent)."""
    from rasa.core.channels.channel import UserMessage

    parses: List[Any] = []
    for text in texts:
        try:
            parses.append(loop.run_until_complete(agent.processor.parse_message(UserMessage(text))))
        except Exception as error:  # noqa: BLE001 - compared below
            parses.append(f"{type(error).__name__}: {error} from {error.__cause__!r}")
    return parses


def whole_parse_sample(texts: List[str]) -> List[str]:
    """A third of the corpus and every odd input: two whole parses of each of the 9,000-odd texts
    ran past the time limit of a test on a slow CI machine, and each component's fast path is
    compared with its original on every text above."""
    sample = texts[::3]
    return sample + [t for t in ODD_TEXTS if t not in sample]


def test_whole_parses_are_those_of_the_original_computations(agent, loop, classifier, spacy_ner, safety_layer, texts,
                                                             monkeypatch):
    texts = whole_parse_sample(texts)
    assert len(texts) > 3000
    fast = _parses(agent, loop, texts)
    monkeypatch.setattr(safety_layer.layer.detector.precheck, "may_match", lambda doc: True)
    for model in (classifier.model, safety_layer.model):
        monkeypatch.setattr(model, "scores", lambda text, e=None, m=model: m.decision_function(
            [text], None if e is None else e[None])[0])
    monkeypatch.setattr(spacy_ner, "_ner_entities", lambda text: _original_entities(spacy_ner, text))
    with thinc_forward(spacy_ner._nlp):
        original = _parses(agent, loop, texts)
    differing = [(t, f, o) for t, f, o in zip(texts, fast, original) if f != o]
    assert not differing, f"{len(differing)} parses differ, e.g. {differing[:2]}"
    failed = [t for t, p in zip(texts, fast) if isinstance(p, str)]
    assert failed == [" "], failed
    labels = {(p["intent"]["name"], (p.get("safety") or {}).get("source")) for p in fast if isinstance(p, dict)}
    assert ("crisis", "pattern:kill_self") in labels and ("crisis", "classifier") in labels
    assert ("faq", None) in labels and ("nlu_fallback", None) in labels and ("urgent_medical", "classifier") in labels
    assert any(isinstance(p, dict) and p["entities"] for p in fast)


def test_parses_do_not_depend_on_what_was_parsed_before(agent, loop, texts):
    """No state carried from one message to the next (caches, reused buffers)."""
    sample = texts[::13]
    shuffled = sample[:]
    random.Random(3).shuffle(shuffled)
    first = dict(zip(sample, _parses(agent, loop, sample)))
    again = dict(zip(shuffled, _parses(agent, loop, shuffled)))
    assert first == again


def test_the_patch_switch_leaves_spacy_with_thinc_s_own_forward(monkeypatch):
    """``CLINIC_RASA_PATCHES=0`` (every patch of a library's internals off): the NER of a spaCy
    loaded then keeps thinc's forward; on, it gets the direct one."""
    from clinic.nlu.spacy_model import package_model_dir
    from clinic.nlu.spacy_ner import load_spacy

    models = {}
    for switch in ("0", "1"):
        monkeypatch.setenv("CLINIC_RASA_PATCHES", switch)
        nlp = load_spacy(str(package_model_dir()), ("ner",))
        models[switch] = nlp.get_pipe("ner").model.layers[0]
        assert load_spacy(str(package_model_dir()), ("ner",)) is nlp  # loaded once per state of the switch
    assert models["0"].id not in ner_tok2vec._THINC_FORWARDS
    assert models["1"].id in ner_tok2vec._THINC_FORWARDS
    assert models["1"]._func is not ner_tok2vec._THINC_FORWARDS[models["1"].id]
    assert models["0"] is not models["1"]
    monkeypatch.setenv("CLINIC_RASA_PATCHES", "maybe")
    with pytest.raises(ValueError):
        load_spacy(str(package_model_dir()), ("ner",))
