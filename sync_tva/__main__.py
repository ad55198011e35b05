"""``sync-tva COMMAND ...`` or ``python -m sync_tva COMMAND ...``: one entry point for every command.

With no command (or ``-h``) it lists the commands this installation has; ``sync-tva run ...``
is ``python -m sync_tva.run ...``. A command's module is imported only when it is called, so
listing them stays fast and a command's heavy imports never slow another.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# command -> (module whose main(argv) runs it, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sync_tva.cli.run", "train and evaluate a config (the demo without arguments)"),
    "extract": ("sync_tva.cli.extract", "fill the feature store from raw media"),
    "viz": ("sync_tva.cli.viz", "draw the attention of a run's utterances"),
    "predict": ("sync_tva.cli.predict", "classify new clips, sentences and CSVs with a trained run"),
    "finetune": ("sync_tva.cli.finetune", "fine-tune the text encoder into the feature store"),
    "report": ("sync_tva.cli.report", "tabulate runs and seed summaries side by side"),
}


def _exists(module: str) -> bool:
    """Whether ``sync_tva.a.b`` has a source file here; unlike ``find_spec``, imports no parent package."""
    path = Path(__file__).parent.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def available() -> dict[str, tuple[str, str]]:
    """The commands whose module exists in this installation (none of them is imported)."""
    return {name: entry for name, entry in COMMANDS.items() if _exists(entry[0])}


def usage(commands: dict[str, tuple[str, str]]) -> str:
    width = max(map(len, commands), default=0)
    lines = ["usage: sync-tva COMMAND [ARGS...]   (or python -m sync_tva COMMAND [ARGS...])", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in commands.items()]
    lines += ["", "sync-tva COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = available()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"error: unknown command {name!r}; choose from {', '.join(commands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
