"""``sync_tva/cli/`` and its entry points: every documented spelling of a command starts the same ``main``.

A command is ``sync-tva NAME``, ``python -m sync_tva NAME`` (``sync_tva/__main__.py``) or
``python -m sync_tva.NAME`` (``python -m sync_tva.viz`` for viz), each ending in
``sync_tva.cli.NAME.main``.
"""

from __future__ import annotations

import importlib
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from sync_tva import __main__ as entry

ROOT = Path(__file__).resolve().parents[1]
ENTRY_MODULES = {"run": "sync_tva.run", "extract": "sync_tva.extract", "finetune": "sync_tva.finetune",
                 "predict": "sync_tva.predict", "report": "sync_tva.report", "viz": "sync_tva.viz"}


def test_every_command_lives_in_cli():
    assert set(entry.COMMANDS) == set(ENTRY_MODULES)
    assert all(module == f"sync_tva.cli.{name}" for name, (module, _) in entry.COMMANDS.items())


@pytest.mark.parametrize("name", sorted(ENTRY_MODULES))
def test_python_m_sync_tva_name_runs_the_cli_command(name, monkeypatch, capsys):
    command = importlib.import_module(f"sync_tva.cli.{name}")
    module = ENTRY_MODULES[name]
    run_name = f"{module}.__main__" if name == "viz" else module  # python -m on a package runs its __main__
    monkeypatch.delitem(sys.modules, run_name, raising=False)  # runpy runs a fresh copy, as python -m does
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {module} ")
    assert importlib.import_module(run_name).main is command.main


def test_python_m_sync_tva_lists_the_commands_and_the_console_script_exists():
    done = subprocess.run([sys.executable, "-m", "sync_tva"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0
    listed = [line.split()[0] for line in done.stdout.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(entry.COMMANDS)
    script = Path(sys.executable).parent / "sync-tva"
    assert script.is_file(), f"{script} missing: reinstall the package (make install, or pip install -e .)"
    assert entry.main(["nope"]) == 2


def test_sync_tva_name_passes_the_arguments_on(capsys):
    with pytest.raises(SystemExit) as done:
        entry.main(["report", "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: python -m sync_tva.report ")
