"""The review loop's pieces: grouping by meaning, the training data writer (Rasa NLU yml, no
duplicates, no personal data, two writers at once) and the safety banks' reviewed files.

The console's pages: tests/test_console_review.py; the whole loop through training:
tests/test_review_loop_training.py."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import yaml

from clinic.nlu import reviewed_data
from clinic.console import similar
from clinic.nlu.reviewed_data import RefusedExample, ReviewedData, personal_data
from clinic.safety import bank


@pytest.fixture(scope="module")
def embed():
    from clinic.nlu.sentence_embeddings import encoder

    return encoder().encode


# --- grouping -------------------------------------------------------------------------


def test_similar_messages_are_grouped_and_different_ones_apart(embed) -> None:
    texts = [
        "how much does it cost",  # 0 price
        "can I drive home after my session",  # 1 driving
        "what's the price per month",  # 2 price
        "is it covered by my insurance",  # 3 insurance
        "am I allowed to drive after a dose",  # 4 driving
        "how expensive is the treatment",  # 5 price
        "does insurance pay for this",  # 6 insurance
    ]
    groups = similar.group_texts(texts, embed)
    as_sets = sorted(sorted(g) for g in groups)
    assert as_sets == [[0, 2, 5], [1, 4], [3, 6]]
    assert sorted(groups[0]) == [0, 2, 5]  # the largest group first


def test_grouping_by_the_threshold_on_known_vectors() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.8, 0.6, 0.0])  # cosine 0.8 with a
    c = np.array([0.0, 0.0, 1.0])  # 0 with both
    assert similar.group(np.vstack([a, b, c]), threshold=0.75) == [[0, 1], [2]]
    assert similar.group(np.vstack([a, b, c]), threshold=0.85) == [[0], [1], [2]]
    assert similar.group(np.zeros((0, 3))) == []


# --- personal data ----------------------------------------------------------------------


@pytest.mark.parametrize("text,found", [
    ("my email is dana.reyes@example.com, how much is it", "an e-mail address"),
    ("call me at (503) 555-0142 about pricing", "a phone number"),
    ("text 503.555.0142 please", "a phone number"),
    ("my name is dana and I want to know the price", "a name"),
    ("Hi, I'm Dana. How much does it cost?", "a name"),
    ("this is Marcus, do you take insurance", "a name"),
    ("i am Priya, is it legal here", "a name"),
    ("born 03/14/1988, am i too old", "a full date"),
    ("my dob is 3-14-88 is that ok", "a full date"),
    ("DOB 1988-03-14", "a full date"),
    ("i was born March 14, 1988", "a full date"),
    ("i live at 42 elm street, do you come here", "a street address"),
    ("1200 NW Main St. is my address", "a street address"),
    ("can you mail it to 7 oak ave", "a street address"),
])
def test_personal_data_is_found(text: str, found: str) -> None:
    assert personal_data(text) == found
    with pytest.raises(RefusedExample, match=found):
        reviewed_data.clean_text(text)


@pytest.mark.parametrize("text", [
    "I'm worried about the side effects",
    "What If I'm Pregnant And Want Treatment?",
    "i'm 34 and have tried 3 antidepressants",
    "how much does it cost per month",
    "Is 988 the number to call?",
    "can i drive 2 hours after my session",
    "after 3 sessions can i drive home",
    "is it 2 or 3 doses a week",
    "what happens on 24/7 support",
    "i took 2 pills at 8.30 this morning",
    "I have done 6 sessions since May 2024",
])
def test_ordinary_questions_are_not_personal_data(text: str) -> None:
    assert personal_data(text) is None


def test_a_text_is_cleaned_to_one_line() -> None:
    assert reviewed_data.clean_text("  how [much]\n does it   cost ") == "how (much) does it cost"
    for bad in ("", "   ", "/greet", "x" * 501):
        with pytest.raises(RefusedExample):
            reviewed_data.clean_text(bad)


def test_control_characters_are_dropped_and_the_file_stays_readable(tmp_path: Path) -> None:
    assert reviewed_data.clean_text("how\x07 much\x7f\tdoes\u200b it\ncost\x00") == "how much does it cost"
    writer = ReviewedData(tmp_path)
    writer.add("faq/pricing", ["bell\x07 in the price\x1b[0m question\x7f", "a\u202eright to left\u2066 price"])
    assert writer.count() == {"reviewed/faq_pricing.yml": 2}  # PyYAML reads it back (the Review page counts on every view)
    assert sorted(m.get("text") for m in rasa_load(tmp_path / "reviewed" / "faq_pricing.yml").intent_examples) == [
        "aright to left price", "bell in the price(0m question"]
    with pytest.raises(RefusedExample, match="empty"):
        reviewed_data.clean_text("\x07\x7f\u200b")


# --- the writer -------------------------------------------------------------------------


def rasa_load(path: Path):
    from rasa.shared.nlu.training_data.loading import load_data

    return load_data(str(path))


def test_examples_are_written_as_rasa_nlu_data_once(tmp_path: Path) -> None:
    writer = ReviewedData(tmp_path)
    done = writer.add("faq/pricing", ["what does a month of this run me", "whats the damage per month"])
    assert done.files == ["reviewed/faq_pricing.yml"] and len(done.written) == 2
    again = writer.add("faq/pricing", ["What does a month of this run me?", "is there a sliding scale"])
    assert again.written == ["is there a sliding scale"]
    assert again.duplicates == ["What does a month of this run me?"]  # same words, other case and punctuation
    path = tmp_path / "reviewed" / "faq_pricing.yml"
    doc = yaml.safe_load(path.read_text())
    assert doc["version"] == "3.1"
    data = rasa_load(path)
    assert sorted(m.get("text") for m in data.intent_examples) == [
        "is there a sliding scale", "what does a month of this run me", "whats the damage per month"]
    assert {m.get("intent") for m in data.intent_examples} == {"faq"}
    assert {m.get("intent_response_key") for m in data.intent_examples} == {"faq/pricing"}
    writer.add("greet", ["good morning folks"])
    assert rasa_load(tmp_path / "reviewed" / "greet.yml").intent_examples[0].get("intent") == "greet"
    assert writer.count() == {"reviewed/faq_pricing.yml": 3, "reviewed/greet.yml": 1}


def test_personal_data_refuses_the_whole_batch(tmp_path: Path) -> None:
    writer = ReviewedData(tmp_path)
    with pytest.raises(RefusedExample, match="e-mail"):
        writer.add("faq/pricing", ["how much is it", "mail me at a@b.co"])
    assert not (tmp_path / "reviewed" / "faq_pricing.yml").exists()


def test_an_example_of_another_intent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "insurance.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: faq/insurance\n  examples: |\n    - do you take insurance\n')
    writer = ReviewedData(tmp_path)
    with pytest.raises(RefusedExample, match="faq/insurance"):
        writer.add("faq/pricing", ["Do you take insurance?"])
    assert writer.add("faq/insurance", ["do you take insurance"]).duplicates == ["do you take insurance"]
    assert not (tmp_path / "reviewed").exists()


def test_a_text_of_an_evaluation_set_is_refused(tmp_path: Path) -> None:
    held_out = tmp_path / "heldout.yml"
    held_out.write_text('version: "3.1"\nnlu:\n- intent: faq/pricing\n  examples: |\n    - is there a sliding scale\n')
    bank_file = tmp_path / "test_bank.yml"
    bank_file.write_text("safety_bank:\n- outcome: crisis\n  category: plan\n  examples: |\n    - tonight is the night i go\n")
    writer = ReviewedData(tmp_path / "data", evaluation=[held_out, bank_file])
    with pytest.raises(RefusedExample, match="evaluation set"):
        writer.add("faq/pricing", ["how much is it", "Is there a sliding-scale?"])
    with pytest.raises(RefusedExample, match="evaluation set"):
        writer.add("crisis", ["Tonight is the night I go."])
    assert writer.count() == {}
    assert writer.add("faq/pricing", ["how much is it"]).written == ["how much is it"]
    # the project's own sets, as the console passes them
    project = reviewed_data.evaluation_files()
    assert {p.parent.name for p in project} == {"nlu", "safety"}
    first = bank.file_examples(next(p for p in project if p.parent.name == "safety"))[0]
    with pytest.raises(RefusedExample, match="evaluation set"):
        ReviewedData(tmp_path / "data", evaluation=project).add(reviewed_data.NOT_CRISIS, [first])


def test_a_new_topic_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(RefusedExample):
        ReviewedData(tmp_path).add(reviewed_data.NEW_TOPIC, ["do you ship to military addresses"])


def _write_one_by_one(root: str, texts, barrier) -> None:
    """One writer process: waits for the other, then adds its texts one at a time (each add reads
    the files and replaces one: without the file lock, the two processes lose each other's)."""
    barrier.wait(timeout=60)
    writer = ReviewedData(Path(root))
    for text in texts:
        writer.add("faq/pricing", [text])


def test_two_writer_processes_at_once_lose_nothing_and_write_nothing_twice(tmp_path: Path) -> None:
    # two processes (as two console workers): the process lock is no help between them, the file lock is
    context = multiprocessing.get_context("spawn")
    texts = [f"question number {i} about the price" for i in range(40)]
    barrier = context.Barrier(2)
    workers = [context.Process(target=_write_one_by_one, args=(str(tmp_path), texts[i::2] + texts[:10], barrier))
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    written = [m.get("text") for m in rasa_load(tmp_path / "reviewed" / "faq_pricing.yml").intent_examples]
    assert sorted(written) == sorted(texts)


# --- the safety banks ---------------------------------------------------------------------


def test_safety_corrections_feed_the_banks(tmp_path: Path) -> None:
    writer = ReviewedData(tmp_path)
    writer.add("crisis", ["honestly thinking of walking into the sea tonight"])
    writer.add("urgent_medical", ["my lips went numb and my chest is tight after the troche"])
    writer.add(reviewed_data.NOT_CRISIS, ["this pricing is killing me lol"])
    writer.add("faq/side_effects", ["will i feel dead inside after a session"], also_negative=True)
    risks = bank.load_risk_examples(tmp_path / "safety" / "reviewed.yml")
    assert [(e.outcome, e.group) for e in risks] == [("crisis", "staff_reviewed"), ("urgent_medical", "staff_reviewed")]
    negatives = bank.load_training_negatives(tmp_path / "safety")
    assert sorted(e.text for e in negatives) == ["this pricing is killing me lol", "will i feel dead inside after a session"]
    assert {(e.outcome, e.group) for e in negatives} == {("none", "staff_reviewed")}
    # Rasa reads the risk file as NLU data (the safety layer trains on its intents), and passes over the negatives
    assert sorted(m.get("intent") for m in rasa_load(tmp_path / "safety" / "reviewed.yml").intent_examples) == [
        "crisis", "urgent_medical"]
    assert writer.add(reviewed_data.NOT_CRISIS, ["This pricing is KILLING me lol!"]).duplicates
    assert len(bank.load_training_negatives(tmp_path / "safety")) == 2


def test_only_the_texts_taken_over_become_hard_negatives(tmp_path: Path) -> None:
    writer = ReviewedData(tmp_path)
    done = writer.add("faq/side_effects", ["will this kill my appetite", "does it make you sleepy"], also_negative=[True, False])
    assert done.written == ["will this kill my appetite", "does it make you sleepy"]
    assert done.negatives == ["will this kill my appetite"]
    assert [e.text for e in bank.load_training_negatives(tmp_path / "safety")] == ["will this kill my appetite"]
    with pytest.raises(ValueError):
        writer.add("faq/side_effects", ["a", "b"], also_negative=[True])


def test_the_safety_banks_never_contradict_themselves(tmp_path: Path) -> None:
    (tmp_path / "safety").mkdir()
    (tmp_path / "nlu").mkdir()
    (tmp_path / "safety" / "crisis.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: crisis\n  metadata:\n    category: plan\n  examples: |\n'
        '    - i have the pills counted out for tonight\n')
    (tmp_path / "nlu" / "urgent.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: urgent_medical\n  examples: |\n    - my chest hurts and my arm is numb\n')
    (tmp_path / "safety" / "hard_negatives.yml").write_text(
        "safety_negatives:\n- kind: idiom\n  examples: |\n    - this commute is killing me\n")
    writer = ReviewedData(tmp_path)
    for text in ("I have the pills counted out for tonight!", "my chest hurts and my arm is numb"):
        with pytest.raises(RefusedExample, match="cannot be taught as not a crisis"):
            writer.add(reviewed_data.NOT_CRISIS, [text])
    for risk in ("crisis", "urgent_medical"):
        with pytest.raises(RefusedExample, match="is a hard negative"):
            writer.add(risk, ["how much is it", "This commute is KILLING me"])
    assert not (tmp_path / "safety" / "reviewed.yml").exists()
    assert not (tmp_path / "safety" / "hard_negatives_reviewed.yml").exists()
    assert [e.text for e in bank.load_training_negatives(tmp_path / "safety")] == ["this commute is killing me"]


# --- what eval-nlu says of them, and the copy trained without them ---------------------------


def test_eval_nlu_reports_the_reviewed_examples_and_the_copy_leaves_them_out(tmp_path: Path) -> None:
    from clinic.nlu.evaluation import Report, comparison_table, reviewed_summary
    from clinic.nlu.training import copy_data, reviewed_paths

    data = tmp_path / "data"
    (data / "faq").mkdir(parents=True)
    (data / "rules").mkdir()
    (data / "faq" / "pricing.yml").write_text('version: "3.1"\nnlu:\n- intent: faq/pricing\n  examples: |\n    - price?\n')
    (data / "rules" / "faq.yml").write_text('version: "3.1"\nrules: []\n')
    assert reviewed_summary(data) == "reviewed examples in the training data: 0"
    writer = ReviewedData(data)
    writer.add("faq/pricing", ["will this break the bank", "whats the damage"])
    writer.add("crisis", ["walking into the sea tonight"])
    assert reviewed_summary(data) == (f"reviewed examples in the training data: 3 ({data}/reviewed/faq_pricing.yml 2, "
                                      f"{data}/safety/reviewed.yml 1)")
    reviewed = reviewed_paths(data)
    assert [p.relative_to(data).as_posix() for p in reviewed] == ["reviewed/faq_pricing.yml", "safety/reviewed.yml"]
    copy = copy_data(tmp_path / "copy", data, without=reviewed)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*.yml")) == ["faq/pricing.yml"]
    report = Report(examples=2, accuracy=0.5, topic_accuracy=0.25, topic_top3_accuracy=1.0, ece=0.125, fallbacks=1,
                    faq_examples=2, top3_accuracy=1.0, per_label={}, reliability=[], outcomes={}, errors=[])
    table = comparison_table({"tests/nlu/heldout.yml": {"without reviewed": report, "with reviewed": report}}).splitlines()
    assert table[1].split() == ["tests/nlu/heldout.yml", "without", "reviewed", "0.250", "1.000", "0.125", "0.500", "1"]
    assert table[2].split()[1:3] == ["with", "reviewed"]


def test_the_training_config_is_the_projects_with_the_copys_bank_or_no_safety_layer(tmp_path: Path) -> None:
    from clinic.nlu.training import ROOT, SAFETY_LAYER, training_config

    project = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in project["pipeline"]]
    with_safety = training_config(tmp_path / "data")
    assert [c["name"] for c in with_safety["pipeline"]] == names and SAFETY_LAYER in names
    layer = next(c for c in with_safety["pipeline"] if c["name"] == SAFETY_LAYER)
    assert layer["bank"] == str((tmp_path / "data" / "safety").resolve())
    assert {k: v for k, v in layer.items() if k != "bank"} == {
        k: v for k, v in next(c for c in project["pipeline"] if c["name"] == SAFETY_LAYER).items() if k != "bank"}
    without = training_config(tmp_path / "data", safety=False)
    assert [c["name"] for c in without["pipeline"]] == [n for n in names if n != SAFETY_LAYER]
    assert without["policies"] == project["policies"] and without["language"] == project["language"]
    assert next(c for c in project["pipeline"] if c["name"] == SAFETY_LAYER)["bank"] == "data/safety"  # untouched
