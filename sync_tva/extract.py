"""``python -m sync_tva.extract``: entry point; the command lives in sync_tva/cli/extract.py."""

import sys

from .cli.extract import main

if __name__ == "__main__":
    sys.exit(main())
