"""Rasa's command line with the clinic's patches installed (unless ``CLINIC_RASA_PATCHES=0``):

    python -m clinic.rasa_runtime.patches test core --model models/clinic.tar.gz --stories tests/stories ...

The same as ``rasa <arguments>`` (`make test-core` runs the test stories so, once with the
patches and once without).
"""

import sys

from clinic.rasa_runtime import patches


def main() -> None:
    patches.install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
