"""``python -m sync_tva.viz``: entry point; the command lives in sync_tva/cli/viz.py."""

import sys

from ..cli.viz import main

if __name__ == "__main__":
    sys.exit(main())
