"""Imports point left along the pipeline, and no modules (or layer packages) import each other in a circle.

The folders are the pipeline, read left to right (ARCHITECTURE.md, "Layout"): the foundation,
then data, features, graphs, models, train, inference, viz, and the commands (``cli/``) with their
entry modules on top. A module may import its own layer package and anything to its left, never
to its right. The check reads the source with ``ast`` (nothing is imported), so it sees every
import: at the top of a module, inside functions, under ``TYPE_CHECKING`` and
``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = "sync_tva"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# The allowed order, in one table. Each module belongs to the longest unit naming it or one of its
# packages (``sync_tva.viz.__main__`` before ``sync_tva.viz``; ``sync_tva`` is only its ``__init__``).
# A module may import its own unit and every unit of a lower layer. Inside layer 0 (the foundation)
# the order is explicit instead: a foundation unit imports only the foundation units listed with it.
# The commands (``sync_tva.cli``, layer 8) sit on top of the library: nothing of the library imports
# them. Their entry modules (``python -m sync_tva.run`` and the like, layer 9) import them, and
# nothing imports an entry module.
COMMANDS = 8
ENTRY_POINTS = 9
LAYERS: dict[str, tuple[int, tuple[str, ...]]] = {
    # unit                     layer, foundation units it may import (layer 0 only)
    "sync_tva": (0, ()),  # the __init__: every import of sync_tva.* runs it first
    "sync_tva.errors": (0, ()),
    "sync_tva.io": (0, ("sync_tva.errors",)),
    "sync_tva.registry": (0, ("sync_tva.errors",)),
    "sync_tva.device": (0, ("sync_tva.errors",)),
    "sync_tva.config": (0, ("sync_tva.errors", "sync_tva.io")),  # a module or a package: both match
    "sync_tva.records": (0, ("sync_tva.errors",)),
    "sync_tva.testing": (0, ("sync_tva.errors", "sync_tva.io")),
    "sync_tva.distributed": (0, ("sync_tva.errors",)),  # torch.distributed: extraction's shards and training's DDP
    "sync_tva.epochs": (0, ()),  # what both training loops share (fit, text fine-tuning)
    "sync_tva.metrics": (0, ()),
    "sync_tva.data": (1, ()),
    "sync_tva.features": (2, ()),
    "sync_tva.graphs": (3, ()),
    "sync_tva.models": (4, ()),
    "sync_tva.train": (5, ()),
    "sync_tva.inference": (6, ()),
    "sync_tva.viz": (7, ()),
    "sync_tva.predictor": (7, ()),  # beside viz: it imports inference (layer 6), viz does not import it
    "sync_tva.cli": (COMMANDS, ()),
    "sync_tva.run": (ENTRY_POINTS, ()),
    "sync_tva.extract": (ENTRY_POINTS, ()),
    "sync_tva.finetune": (ENTRY_POINTS, ()),
    "sync_tva.predict": (ENTRY_POINTS, ()),
    "sync_tva.report": (ENTRY_POINTS, ()),
    "sync_tva.__main__": (ENTRY_POINTS, ()),
    "sync_tva.viz.__main__": (ENTRY_POINTS, ()),
}


@dataclass(frozen=True)
class Import:
    """``module`` imports ``target`` (both absolute names) at ``where`` (``path:line``)."""

    module: str
    target: str
    where: str

    def __str__(self) -> str:
        return f"{self.module} -> {self.target} ({self.where})"


@dataclass
class Report:
    """What the checker found; every list is empty for a clean package."""

    unplaced: list[str] = field(default_factory=list)  # modules no unit of LAYERS covers
    rightward: list[Import] = field(default_factory=list)
    cycles: list[list[Import]] = field(default_factory=list)  # the imports inside each module cycle
    package_cycles: list[list[Import]] = field(default_factory=list)  # the same between units

    def problems(self) -> list[str]:
        lines = [f"{m}: no unit in LAYERS covers it; give it a place in tests/test_imports.py" for m in self.unplaced]
        for imp in self.rightward:
            (src_layer, _), (dst_layer, _) = LAYERS[unit_of(imp.module)], LAYERS[unit_of(imp.target)]
            lines.append(f"rightward import (layer {src_layer} -> layer {dst_layer}): {imp}")
        for kind, cycles in (("module", self.cycles), ("package", self.package_cycles)):
            for cycle in cycles:
                lines.append(f"{kind} import cycle:\n" + "\n".join(f"    {imp}" for imp in cycle))
        return lines


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """``{absolute module name: file}`` for every ``.py`` under the package folder ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _absolute(name: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module of ``from <level dots><name> import ...`` written in ``importer``."""
    if level == 0:
        return name or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level - 1 >= len(base):
        raise ValueError(f"{importer}: relative import of level {level} reaches above the top-level package")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _import_module_name(node: ast.Call) -> str | None:
    """The literal name given to ``importlib.import_module`` or ``__import__``, if that is what ``node`` calls."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports_of(module: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """Every import of ``package`` modules in one file, wherever it stands in the file.

    ``modules`` are all the package's modules (``find_modules``): they tell a submodule from a name.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, module, is_package)
            # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself.
            found += [(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base, node.lineno) for a in node.names]
        elif isinstance(node, ast.Call) and (name := _import_module_name(node)):
            level = len(name) - len(name.lstrip("."))
            found.append((_absolute(name[level:] or None, level, module, is_package), node.lineno))
    where = path.relative_to(modules[package].parents[1]).as_posix()  # sync_tva/graphs/builder.py
    return [
        Import(module, target, f"{where}:{line}")
        for target, line in dict.fromkeys(found)  # ``from x import a, b`` is one import of x
        if target == package or target.startswith(package + ".")
    ]


def unit_of(module: str) -> str | None:
    """The LAYERS unit a module belongs to: the longest one naming it or a package above it."""
    units = [u for u in LAYERS if module == u or (u != PACKAGE and module.startswith(u + "."))]
    return max(units, key=len, default=None)


def points_left(imp: Import) -> bool:
    """Whether ``imp`` follows LAYERS (a target outside every unit is reported as unplaced, not here)."""
    src, dst = unit_of(imp.module), unit_of(imp.target)
    if src is None or dst is None or src == dst:
        return True
    (src_layer, foundation), (dst_layer, _) = LAYERS[src], LAYERS[dst]
    if src_layer == dst_layer == 0:
        return dst in foundation
    return dst_layer < src_layer


def _cycles(edges: dict[tuple[str, str], list[Import]]) -> list[list[Import]]:
    """The imports inside each strongly connected component of more than one node."""
    graph = nx.DiGraph(list(edges))
    cycles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            inside = sorted(pair for pair in edges if pair[0] in component and pair[1] in component)
            cycles.append([imp for pair in inside for imp in edges[pair]])
    return sorted(cycles, key=lambda c: (c[0].module, c[0].target))


def check_imports(root: Path = ROOT, package: str = PACKAGE) -> Report:
    """Read every module of the package at ``root`` and report imports that break LAYERS or close a cycle."""
    modules = find_modules(root, package)
    imports = [imp for name, path in modules.items() for imp in imports_of(name, path, modules, package)]
    report = Report(unplaced=[m for m in modules if unit_of(m) is None])
    report.rightward = [imp for imp in imports if not points_left(imp)]
    between_modules, between_units = defaultdict(list), defaultdict(list)
    for imp in imports:
        if imp.target in modules and imp.target != imp.module:
            between_modules[imp.module, imp.target].append(imp)
        src, dst = unit_of(imp.module), unit_of(imp.target)
        if src is not None and dst is not None and src != dst:
            between_units[src, dst].append(imp)
    report.cycles = _cycles(between_modules)
    report.package_cycles = _cycles(between_units)
    return report


@pytest.fixture(scope="module")
def report() -> Report:
    return check_imports()


def test_every_module_has_a_layer(report):
    assert not report.unplaced, "\n" + "\n".join(report.problems())


def test_imports_point_left(report):
    assert not report.rightward, "\n" + "\n".join(report.problems())


def test_no_import_cycles(report):
    assert not report.cycles and not report.package_cycles, "\n" + "\n".join(report.problems())


def pairs(imports: list[Import]) -> list[tuple[str, str]]:
    return sorted((imp.module, imp.target) for imp in imports)


def test_checker_reports_a_synthetic_package(tmp_path):
    files = {
        "__init__.py": "",
        "errors.py": "class Oops(Exception):\n    pass\n",
        "io.py": "from .errors import Oops\n",
        "records.py": "from . import io\n",  # rightward inside the foundation: records may import errors only
        "scratch.py": "",  # in no unit of LAYERS
        "config/__init__.py": "from .loader import load\n",  # config as a package: one unit with config.py
        "config/loader.py": "from ..errors import Oops\nfrom ..io import Oops as Again\n",
        "config/types.py": "from ..records import Utterance\n",  # rightward: config may import errors and io only
        "data/__init__.py": "from .reader import read\n",
        "data/labels.py": "NAMES = ()\n",
        "data/reader.py": "from ..errors import Oops\n\ndef read():\n    import sync_tva.models.net\n",  # rightward
        "graphs/__init__.py": "",
        "graphs/a.py": "from . import b\n",  # a -> b -> c -> a: a module cycle
        "graphs/b.py": "def build():\n    from .c import EDGES\n    return EDGES\n",
        "graphs/c.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from sync_tva.graphs.a import b\n",
        "models/__init__.py": "",
        "models/net.py": "from ..graphs import a\n",  # left: fine
        "models/head.py": "from ..data.labels import NAMES\n",  # left: fine
        "viz/__init__.py": "",
        "viz/draw.py": "def figure():\n    from sync_tva.cli.run import main\n",  # rightward: the library imports no command
        "cli/__init__.py": "",
        "cli/run.py": "import importlib\n\nimportlib.import_module('sync_tva.models.net')\nfrom ..data import read\n",
        "run.py": "from .cli.run import main\n",  # an entry module: it imports its command
    }
    for name, text in files.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    report = check_imports(tmp_path / PACKAGE)
    assert report.unplaced == ["sync_tva.scratch"]
    assert pairs(report.rightward) == [
        ("sync_tva.config.types", "sync_tva.records"),
        ("sync_tva.data.reader", "sync_tva.models.net"),
        ("sync_tva.records", "sync_tva.io"),
        ("sync_tva.viz.draw", "sync_tva.cli.run"),
    ]
    assert [pairs(c) for c in report.cycles] == [[
        ("sync_tva.graphs.a", "sync_tva.graphs.b"),
        ("sync_tva.graphs.b", "sync_tva.graphs.c"),
        ("sync_tva.graphs.c", "sync_tva.graphs.a"),
    ]]
    # data -> models (the rightward import) and models -> data (a legal one) close a cycle between
    # the layer packages even though no two modules import each other.
    assert [pairs(c) for c in report.package_cycles] == [[
        ("sync_tva.data.reader", "sync_tva.models.net"),
        ("sync_tva.models.head", "sync_tva.data.labels"),
    ]]
    problems = "\n".join(report.problems())
    assert "rightward import (layer 1 -> layer 4): sync_tva.data.reader -> sync_tva.models.net" in problems
    assert "sync_tva/data/reader.py:4" in problems and "module import cycle" in problems and "package import cycle" in problems


def test_checker_resolves_relative_imports():
    assert _absolute("schema", 1, "sync_tva.graphs.builder", is_package=False) == "sync_tva.graphs.schema"
    assert _absolute("batching", 1, "sync_tva.graphs", is_package=True) == "sync_tva.graphs.batching"
    assert _absolute("errors", 2, "sync_tva.graphs.builder", is_package=False) == "sync_tva.errors"
    assert _absolute(None, 2, "sync_tva.viz.__main__", is_package=False) == "sync_tva"
    assert unit_of("sync_tva.viz.__main__") == "sync_tva.viz.__main__"
    assert unit_of("sync_tva.viz.draw") == "sync_tva.viz"
    assert unit_of("sync_tva.config.loader") == "sync_tva.config"
    assert unit_of("sync_tva.unknown") is None
