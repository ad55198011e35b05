"""The restricted unpickler: feature-pickle content loads, anything else is refused before it runs."""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from sync_tva.data.safe_pickle import SafeUnpickler, safe_load
from sync_tva.errors import DataError
from sync_tva.run import main as run_main


class Payload:
    """Pickles as a call of ``func(*args)``: what a hostile file would do on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile(marker: Path) -> list[Payload]:
    """Payloads that each create ``marker`` when unpickled with plain ``pickle``."""
    return [
        Payload(os.system, f"touch {marker}"),
        Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        Payload(Path.touch, marker),
    ]


def loads(data: bytes) -> object:
    return SafeUnpickler(io.BytesIO(data), source="mem.pkl").load()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_feature_pickle_content_round_trips(protocol):
    content = (
        {"Ses01F_impro01": [np.arange(4, dtype=np.float32), np.ones(2)]},
        {0: [[0, 1, 0], [1, 0, 0]]},
        ["a", "b"],
        {3, 4},
        collections.OrderedDict(x=np.float64(1.5)),
        collections.defaultdict(list, y=[np.int64(2)]),
        np.array(["M", "F"]),
        (1 + 2j, b"raw", True, None),
    )
    back = loads(pickle.dumps(content, protocol=protocol))
    np.testing.assert_array_equal(back[0]["Ses01F_impro01"][0], content[0]["Ses01F_impro01"][0])
    assert back[0]["Ses01F_impro01"][0].dtype == np.float32
    assert back[1:4] == content[1:4] and back[4] == content[4] and back[5] == content[5]
    assert type(back[5]) is collections.defaultdict and back[5].default_factory is list
    assert list(back[6]) == ["M", "F"] and back[7] == content[7]


def test_python2_pickle_with_latin1_strings_loads():
    # Protocol 2 as Python 2 wrote it: module __builtin__ and a numpy buffer held in a byte *string*.
    data = struct.pack("<2f", 1.5, -2.0)
    array = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85U\x01b\x87R"
        b"(K\x01K\x02\x85cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89U\x08" + data + b"tb."
    )
    np.testing.assert_array_equal(loads(array), np.array([1.5, -2.0], dtype=np.float32))
    assert loads(b"c__builtin__\nset\n((lp0\nI1\naI2\natR.") == {1, 2}


def test_numpy2_spelling_of_numpy_core_is_accepted():
    data = pickle.dumps(np.arange(3.0), protocol=2).replace(
        b"numpy.core.multiarray", b"numpy._core.multiarray"
    )
    np.testing.assert_array_equal(loads(data), np.arange(3.0))


def test_payloads_are_live_under_plain_pickle(tmp_path):
    """Control: the payloads really run under ``pickle.loads``, so the refusal tests below can fail."""
    for i, payload in enumerate(hostile(tmp_path / "control")):
        marker = tmp_path / "control"
        pickle.loads(pickle.dumps(payload))
        assert marker.exists(), i
        marker.unlink()


@pytest.mark.parametrize("index, refused", [(0, "system"), (1, "builtins.eval"), (2, "pathlib.Path.touch")])
def test_hostile_pickle_is_refused_and_its_payload_never_runs(tmp_path, index, refused):
    marker = tmp_path / "pwned"
    path = tmp_path / "IEMOCAP_features.pkl"
    # The payload hides inside an otherwise ordinary features tuple.
    path.write_bytes(pickle.dumps(({"d1": [np.zeros(3)]}, hostile(marker)[index]), protocol=4))
    with pytest.raises(DataError, match="refused to load") as err:
        safe_load(path)
    assert str(path) in str(err.value) and refused in str(err.value)
    assert not marker.exists()


def test_hostile_pickle_through_the_run_command_is_a_clean_error(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "features.pkl"
    path.write_bytes(pickle.dumps(hostile(marker)[0]))
    code = run_main(
        [
            "--out",
            str(tmp_path / "run"),
            "data.name=features_pickle",
            f"data.path={path}",
            "data.layout=iemocap",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "refused to load" in err and "Traceback" not in err
    assert not marker.exists()


def test_persistent_ids_are_refused():
    class Pointer:
        pass

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return "outside" if isinstance(obj, Pointer) else None

    buf = io.BytesIO()
    Writer(buf, protocol=2).dump([Pointer()])
    with pytest.raises(DataError, match="persistent id 'outside'"):
        loads(buf.getvalue())


def test_damaged_and_missing_files_are_data_errors(tmp_path):
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(pickle.dumps({"a": [1, 2, 3]})[:-5])
    with pytest.raises(DataError, match=rf"{broken}: not a readable pickle"):
        safe_load(broken)
    with pytest.raises(DataError, match="not found"):
        safe_load(tmp_path / "absent.pkl")


def test_codecs_other_than_latin1_are_refused(tmp_path):
    """``_codecs.encode`` is admitted for Python 2 byte strings only; a compression codec is refused."""
    class Packed:
        def __reduce__(self):
            return (codecs.encode, (b"x" * 10, "zlib_codec"))

    path = tmp_path / "packed.pkl"
    path.write_bytes(pickle.dumps(Packed(), protocol=2))
    with pytest.raises(DataError, match=r"packed\.pkl: not a readable pickle.*zlib_codec"):
        safe_load(path)
    assert safe_load_bytes_of("abc") == b"abc"


def safe_load_bytes_of(text: str) -> bytes:
    """Round-trip a Python 3 ``bytes`` through protocol 2, which spells it ``_codecs.encode(text, 'latin1')``."""
    return SafeUnpickler(io.BytesIO(pickle.dumps(text.encode("latin1"), protocol=2)), source="mem").load()
