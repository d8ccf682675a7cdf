"""The restricted unpickler reads plain data and never runs code from a crafted pickle."""

from __future__ import annotations

import copyreg
import os
import pickle
import subprocess
import sys

import pytest

from pepler_cli.data.safe_pickle import load_plain_pickle
from pepler_cli.errors import PeplerError

PLAIN = [
    {"user": "u1", "item": "i1", "rating": 4, "template": ("room", "clean", "the room was clean", 1)},
    {
        "user": "u2",
        "item": "i2",
        "rating": 2.5,
        "template": ("staff", "rude", "staff were rude", -1),
        "x": None,
    },
    {"nested": [1, [2, (3, {"k": True})]], "big": 2**80, "neg": -7, "f": 1e-300, "s": "naïve ☕"},
]


class _Touch:
    """Pickles as a call of os.system that would create ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Write:
    """Pickles as builtins.exec of code that would write ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_plain_data_round_trips_in_every_protocol(tmp_path, protocol):
    path = tmp_path / "data.pickle"
    path.write_bytes(pickle.dumps(PLAIN, protocol=protocol))
    assert load_plain_pickle(path) == PLAIN


def test_python2_style_strings_are_decoded(tmp_path):
    # Protocol 2 as Python 2 wrote it: SHORT_BINSTRING for str, BINUNICODE for unicode.
    path = tmp_path / "py2.pickle"
    path.write_bytes(b"\x80\x02]q\x00(U\x04roomq\x01X\x05\x00\x00\x00caf\xc3\xa9q\x02e.")
    assert load_plain_pickle(path) == ["room", "café"]


@pytest.mark.parametrize("payload", [_Touch, _Write])
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_crafted_pickle_never_runs_code(tmp_path, payload, protocol):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps([{"user": "u"}, payload(str(marker))], protocol=protocol))
    with pytest.raises(PeplerError) as caught:
        load_plain_pickle(path)
    assert not marker.exists()
    message = caught.value.message
    assert str(path) in message
    # Protocols below 3 name builtins "__builtin__" (Python 2 compatible names).
    expected = (
        f"'{os.system.__module__}.system'"
        if payload is _Touch
        else "builtin__.exec'"
        if protocol < 3
        else "'builtins.exec'"
    )
    assert expected in message
    assert "nothing in it was run" in message


def test_hand_written_global_opcode_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pickle"
    path.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(PeplerError, match=r"'os\.system'"):
        load_plain_pickle(path)
    assert not marker.exists()


def test_extension_registry_opcodes_go_through_find_class(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "ext.pickle"
    key = (os.system.__module__, "system")
    copyreg.add_extension(*key, 0xF1)
    try:
        data = pickle.dumps(_Touch(str(marker)), protocol=2)
    finally:
        copyreg.remove_extension(*key, 0xF1)
    assert pickle.EXT1 in data
    path.write_bytes(data)
    copyreg.add_extension(*key, 0xF1)  # registered while loading too: the lookup must still be refused
    try:
        with pytest.raises(PeplerError, match="system"):
            load_plain_pickle(path)
    finally:
        copyreg.remove_extension(*key, 0xF1)
    assert not marker.exists()


def test_persistent_ids_are_refused(tmp_path):
    path = tmp_path / "pid.pickle"
    path.write_bytes(b"\x80\x02]q\x00X\x01\x00\x00\x00aQa.")  # BINPERSID
    with pytest.raises(PeplerError, match="persistent"):
        load_plain_pickle(path)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "EOFError"),
        (b"not a pickle at all", "not a readable"),
        (pickle.dumps(PLAIN, 4)[:-20], "not a readable"),
    ],
)
def test_broken_files_give_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "broken.pickle"
    path.write_bytes(content)
    with pytest.raises(PeplerError) as caught:
        load_plain_pickle(path)
    assert str(path) in caught.value.message and expected in caught.value.message


def test_missing_file(tmp_path):
    with pytest.raises(PeplerError, match="no such file"):
        load_plain_pickle(tmp_path / "absent.pickle")


def test_importing_the_payload_module_is_not_enough_to_run_it(tmp_path):
    # Run in a fresh interpreter so nothing the test process imported can help the payload.
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(_Touch(str(marker)), protocol=2))
    code = (
        "import sys\nfrom pepler_cli.data.safe_pickle import load_plain_pickle\n"
        "from pepler_cli.errors import PeplerError\n"
        f"try:\n    load_plain_pickle({str(path)!r})\nexcept PeplerError as e:\n    print(e.message)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "refused" in result.stdout
    assert not marker.exists()
