"""A restricted unpickler for outside feature files: plain containers and numpy arrays only.

A pickle is a program: every global it names is imported and may be called while it loads, so
an ordinary ``pickle.load`` on a downloaded file runs whatever the file asks for. The feature
pickles the field shares (DialogueRNN, DialogueGCN, MMGCN, COSMIC, SDT, M3Net) need only builtin
containers and numpy arrays, so :class:`SafeUnpickler` resolves exactly those globals and
refuses every other one *before* it is imported or called: the payload of a hostile file never
runs. The refusal is a :class:`DataError` that names the file and the global.

Python-2 era files (protocol 0-2, numpy arrays holding byte strings) need ``encoding="latin1"``,
which is the default here; files written by Python 3 load the same way.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import DataError

__all__ = ["ALLOWED_GLOBALS", "SafeUnpickler", "safe_load"]

# Every global a feature pickle may name, as (module, name). Anything else is refused.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [
        ("builtins", name)
        for name in (
            "list",
            "dict",
            "tuple",
            "set",
            "frozenset",
            "str",
            "bytes",
            "int",
            "float",
            "complex",
            "bool",
        )
    ]
    + [
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        # Python 3 writes ``bytes`` at protocol <= 2 as _codecs.encode(text, "latin1"): numpy array
        # buffers in such files arrive this way. It only turns a string into bytes.
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    ]
    + [
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    ]
    # Protocol 5 (out-of-band buffers) rebuilds arrays with numpy's _frombuffer.
    + [(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")]
)

# Python 2 module names, as a protocol-0/1/2 file written by Python 2 spells them.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
# numpy 2 moved numpy.core to numpy._core; a file may use either spelling with either numpy.
_NUMPY_CORE_SPELLINGS = {
    "numpy._core.multiarray": "numpy.core.multiarray",
    "numpy.core.multiarray": "numpy._core.multiarray",
    "numpy._core.numeric": "numpy.core.numeric",
    "numpy.core.numeric": "numpy._core.numeric",
}


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`.

    Example::

        with open("IEMOCAP_features.pkl", "rb") as fh:
            data = SafeUnpickler(fh, source="IEMOCAP_features.pkl").load()
    """

    def __init__(self, file: BinaryIO, *, source: str, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global; refuse any other one without importing it."""
        module = _PY2_MODULES.get(module, module)
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self.source}: refused to load: the pickle asks for {module}.{name}, which is not a plain "
                "container or numpy array; feature pickles never need it, so the file may be hostile and was "
                "not run. Recreate the file from plain lists, dicts and numpy arrays."
            )
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        return getattr(_import(module), name)

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids reach outside the file; feature pickles never use them."""
        raise DataError(f"{self.source}: refused to load: the pickle uses persistent id {pid!r}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """The only use of ``_codecs.encode`` in these files; other codecs (compression, rot13) are refused."""
    if encoding.replace("_", "-").lower() not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r} is not allowed")
    return text.encode("latin1")


def _import(module: str) -> Any:
    """Import an allowed module, accepting numpy's other spelling of numpy.core."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        if module not in _NUMPY_CORE_SPELLINGS:
            raise
        return importlib.import_module(_NUMPY_CORE_SPELLINGS[module])


def safe_load(path: str | Path, *, encoding: str = "latin1") -> Any:
    """Load a pickle file through :class:`SafeUnpickler`; damaged files become :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pickle file not found; set data.path to the feature pickle")
    with path.open("rb") as fh:
        try:
            return SafeUnpickler(fh, source=str(path), encoding=encoding).load()
        except DataError:
            raise
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            AttributeError,
            UnicodeError,
            LookupError,
            RecursionError,
            MemoryError,
        ) as exc:
            raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
