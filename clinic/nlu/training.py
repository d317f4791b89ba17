"""Training an NLU-only model on a copy of the training data (the review loop's checks).

``make train`` trains the release model from ``data/`` (the reviewed corrections included:
``clinic.nlu.reviewed_data``). Two checks need a model trained on other data without touching it:
the figures before and after the reviewed examples (``python -m clinic.nlu.evaluation --compare-reviewed``,
``make eval-reviewed``: a model trained without them), and the end-to-end test of the loop (a
correction accepted in the console, then trained on). Both train the NLU alone (the dialogue is
not needed to parse), with the project's ``config.yml``, by Rasa's own ``rasa train nlu``; the test
leaves the safety layer out (``training_config``): the corrected topic is the intent classifier's.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List

import yaml

from clinic.nlu.reviewed_data import NEGATIVES_FILE, REVIEWED_DIR, SAFETY_FILE

ROOT = Path(__file__).resolve().parents[2]


def reviewed_paths(data: Path) -> List[Path]:
    """The reviewed training data under ``data`` (what the console wrote)."""
    found = sorted((data / REVIEWED_DIR).glob("*.yml"))
    return found + [p for p in (data / SAFETY_FILE, data / NEGATIVES_FILE) if p.exists()]


def copy_data(target: Path, source: Path = ROOT / "data", without: Iterable[Path] = ()) -> Path:
    """A copy of the NLU training data (``data/`` but its dialogue rules) at ``target``, without
    the files ``without`` (paths under ``source``)."""
    left_out = {Path(p).resolve() for p in without}
    for path in sorted(source.rglob("*.yml")):
        relative = path.relative_to(source)
        if path.resolve() in left_out or relative.parts[0] == "rules":
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / relative)
    return target


SAFETY_LAYER = "clinic.nlu.safety_layer.SafetyLayerComponent"


def training_config(data: Path, safety: bool = True) -> Dict[str, Any]:
    """The project's ``config.yml`` for a model trained on ``data``: the safety layer reads its hard
    negatives from ``data/safety`` of the copy (config.yml's relative ``bank`` would be the
    project's), or is left out (``safety=False``: the intent classifier alone, which learns nothing
    from ``data/safety``: it excludes the risk intents, and the hard negatives are the safety
    layer's own)."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    pipeline = [dict(component) for component in config["pipeline"]]
    if not safety:
        pipeline = [c for c in pipeline if c["name"] != SAFETY_LAYER]
    for component in pipeline:
        if component["name"] == SAFETY_LAYER:
            component["bank"] = str((Path(data) / "safety").resolve())
    return {**config, "pipeline": pipeline}


def train_nlu(data: Path, out: Path, name: str = "nlu", safety: bool = True) -> Path:
    """An NLU-only model trained on ``data`` with the project's config (``training_config``), as
    ``out/<name>.tar.gz``. Run from the project's folder (config.yml names the spaCy model by a
    relative path)."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / f"{name}-config.yml"
    config.write_text(yaml.safe_dump(training_config(data, safety), sort_keys=False), encoding="utf-8")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    rasa = Path(sys.executable).parent / "rasa"
    subprocess.run(
        [str(rasa), "train", "nlu", "--config", str(config), "--nlu", str(data), "--out", str(out),
         "--fixed-model-name", name, "--quiet"],
        cwd=str(ROOT), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    model = out / f"{name}.tar.gz"
    if not model.exists():
        raise RuntimeError(f"rasa train nlu made no {model}")
    return model
