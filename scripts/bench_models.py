"""The models `make bench` compares: the clinic's (``make train`` builds it) and one trained
with Rasa's stock configuration (bench/stock/config.yml), cached by a hash of its inputs.

The stock model takes several minutes to train (DIET, ResponseSelector, UnexpecTED and TED,
100 epochs each), so it is trained once into ``models/stock-<hash>.tar.gz``; the hash covers
the stock config, the domain, the training data and the Rasa version, so a change to any of
them trains it again and an unchanged tree never does.

    PYTHONPATH=. .venv/bin/python -m scripts.bench_models   # trains the stock model if missing
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLINIC_MODEL = ROOT / "models" / "clinic.tar.gz"
STOCK_CONFIG = ROOT / "bench" / "stock" / "config.yml"


def _inputs() -> list:
    files = [STOCK_CONFIG]
    for folder in ("domain", "data"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))
    return files


def stock_hash() -> str:
    import rasa

    digest = hashlib.sha256(f"rasa {rasa.__version__}\n".encode())
    for path in _inputs():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def stock_model_path() -> Path:
    return ROOT / "models" / f"stock-{stock_hash()}.tar.gz"


def ensure_stock_model(log=print) -> Path:
    """The cached stock model, trained first when its inputs changed (older ones are removed)."""
    path = stock_model_path()
    if path.exists():
        log(f"stock model: {path.relative_to(ROOT)} (cached)")
        return path
    log(f"stock model: training {path.relative_to(ROOT)} with {STOCK_CONFIG.relative_to(ROOT)} (several minutes, once)")
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2")
    started = time.time()
    subprocess.run(
        [str(VENV_BIN / "rasa"), "train", "--config", str(STOCK_CONFIG), "--domain", "domain", "--data", "data",
         "--out", str(path.parent), "--fixed-model-name", path.name[: -len(".tar.gz")], "--quiet"],
        cwd=ROOT, env=env, check=True,
    )
    if not path.exists():
        raise RuntimeError(f"rasa train did not write {path}")
    for old in path.parent.glob("stock-*.tar.gz"):
        if old != path:
            old.unlink()
    log(f"stock model: trained in {time.time() - started:.0f} s")
    return path


if __name__ == "__main__":
    ensure_stock_model()
