"""Every Python block of README.md and docs/*.md runs as written, so the snippets cannot rot.

A file's blocks run in order in one namespace (as a reader follows them), in a temporary
directory. A YAML block whose first line is a comment naming a file (``# my_schema.yaml: ...``)
is written to that file first, since the Python blocks read it. A block that cannot run offline
is fenced ```` ```python skip ````, which renders as Python all the same. Snippets that open
``runs/demo`` find a tiny demo run trained there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest
from conftest import TINY

from sync_tva import run

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NAMED_FILE = re.compile(r"#\s*([\w.-]+\.ya?ml)\b")


@dataclass
class Block:
    """One fenced block: its info string (``python``, ``python skip``, ``yaml``), first line number and text."""

    info: list[str]
    line: int
    code: str


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [Block(m.group(1).split(), text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text)]


def runnable(block: Block) -> bool:
    return block.info[:1] == ["python"] and "skip" not in block.info


def test_the_fence_reader_finds_blocks():
    found = blocks(ROOT / "README.md")
    assert any(runnable(b) for b in found) and any(b.info[:1] == ["bash"] for b in found)


@pytest.mark.slow  # the snippets train a demo run, extract and draw: 5-25 s a file
@pytest.mark.parametrize("doc", [d for d in DOCS if any(runnable(b) for b in blocks(d))], ids=lambda d: d.name)
def test_python_blocks_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = blocks(doc)
    for block in found:
        named = NAMED_FILE.match(block.code.splitlines()[0]) if block.info[:1] == ["yaml"] and block.code else None
        if named:
            Path(named.group(1)).write_text(block.code)
    if any("runs/demo" in b.code for b in found if runnable(b)):
        assert run.main([*TINY, "train.epochs=1", "train.num_threads=1", "--out", "runs/demo"]) == 0
    namespace: dict = {"__name__": "__docs__"}
    for block in filter(runnable, found):
        try:
            exec(compile(block.code, f"{doc.name}:{block.line}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"{doc.relative_to(ROOT)}, the Python block at line {block.line}: {type(exc).__name__}: {exc}")
