"""``python -m sync_tva.report``: entry point; the command lives in sync_tva/cli/report.py."""

import sys

from .cli.report import main

if __name__ == "__main__":
    sys.exit(main())
