"""``python -m sync_tva.finetune``: entry point; the command lives in sync_tva/cli/finetune.py."""

import sys

from .cli.finetune import main

if __name__ == "__main__":
    sys.exit(main())
