"""``python -m sync_tva.run``: entry point; the command lives in sync_tva/cli/run.py."""

import sys

from .cli.run import main

if __name__ == "__main__":
    sys.exit(main())
