"""``python -m sync_tva.predict``: entry point; the command lives in sync_tva/cli/predict.py."""

import sys

from .cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
