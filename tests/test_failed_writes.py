"""A write that fails midway leaves no partial output and says why in one line: prepare, generate, export-data
and train.

A full disk is simulated by files whose writes fail with ENOSPC once a byte budget is spent (the write that
crosses it stores what fits, as a real disk does); the budget is set so that the first, a middle or the last
write of the command fails. A read-only output folder is tested twice: the real thing (chmod, which cannot
stop root, so that variant skips as root) and the same refusals injected at the system calls (the
``refusals`` fixture of tests/conftest.py), which runs as root too, as in CI. The final rename of a complete
output is made to fail as well. Every way: exit code 1, exactly one ``error:`` line naming the output and the
reason, no traceback, no output and no temporary file left, and an output that existed before (with
--overwrite) left byte for byte as it was.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pepler_cli.cli.app import app

NETE = Path(__file__).parent / "fixtures" / "nete-tiny"
NO_SPACE = os.strerror(errno.ENOSPC)
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("tokenizer_loaded_once")


def invoke(*args: Any):
    return runner.invoke(app, [str(arg) for arg in args])


def error_line(result, *fragments: str) -> str:
    """The one ``error:`` line of a failed command; asserts it is the only one, printed last, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no other exception escaped
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(lines[0]), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry under ``directory`` (hidden ones too) with its bytes; None for a directory."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


# ---------------------------------------------------------------------------------------- a disk that fills


class Disk:
    """Writes to files under ``root`` spend ``room`` bytes (characters in text mode); None is unlimited."""

    def __init__(self, root: Path, room: int | None) -> None:
        self.root, self.room, self.written, self.failed = root.resolve(), room, 0, False

    def spend(self, size: int) -> int:
        """How much of a write of ``size`` fits; marks the disk full when not all of it does."""
        self.written += size
        if self.room is None:
            return size
        fits = min(size, self.room)
        self.room -= fits
        if fits < size:
            self.failed = True
        return fits


class FillingFile:
    """A file object whose writes fail with ENOSPC once its disk is full."""

    def __init__(self, handle: Any, disk: Disk) -> None:
        self._handle, self._disk = handle, disk

    def write(self, data: Any) -> int:
        fits = self._disk.spend(len(data))
        if fits < len(data):
            self._handle.write(data[:fits])
            raise OSError(errno.ENOSPC, NO_SPACE)
        return self._handle.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._handle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@contextmanager
def filling_disk(root: Path, room: int | None) -> Iterator[Disk]:
    """Every file opened for writing under ``root`` (or through os.fdopen) is on a disk with ``room`` bytes."""
    disk = Disk(root, room)
    real_open, real_fdopen = builtins.open, os.fdopen

    def writing(mode: str) -> bool:
        return any(flag in mode for flag in "wax+")

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        inside = isinstance(file, (str, Path)) and Path(os.path.realpath(file)).is_relative_to(disk.root)
        return FillingFile(handle, disk) if writing(mode) and inside else handle

    def fake_fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return FillingFile(handle, disk) if writing(mode) else handle

    patch = pytest.MonkeyPatch()
    patch.setattr(builtins, "open", fake_open)
    patch.setattr(io, "open", fake_open)
    patch.setattr(os, "fdopen", fake_fdopen)
    try:
        yield disk
    finally:
        patch.undo()


# --------------------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "ta"
    assert invoke("prepare", "tripadvisor", "--source", NETE, "--out", out).exit_code == 0
    return out


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    result = invoke(*TRAIN, "--data", data, "--out", out)
    assert result.exit_code == 0, result.output
    return out


TRAIN = (
    "train", "--backbone", "gpt2-tiny", "--strategy", "prompt-only", "--epochs", "1", "--batch-size", "32",
    "--device", "cpu",
)  # fmt: skip


def command(name: str, data: Path, run: Path, out: Path) -> list[Any]:
    """The command line of ``name`` writing ``out``."""
    if name == "prepare":
        return ["prepare", "tripadvisor", "--source", NETE, "--out", out]
    if name == "export-data":
        return ["export-data", data, "--out", out]
    if name == "generate":
        return ["generate", run, "--out", out, "--limit", "3", "--device", "cpu"]
    return [*TRAIN, "--data", data, "--out", out]


OUTPUTS = {"prepare": "ta", "export-data": "exported", "generate": "preds.jsonl", "train": "run"}
_TOTALS: dict[str, int] = {}


def total_written(name: str, data: Path, run: Path, folder: Path) -> int:
    """Bytes a successful run of ``name`` writes into ``folder`` (measured once, then ``folder`` is emptied)."""
    if name not in _TOTALS:
        with filling_disk(folder, None) as disk:
            result = invoke(*command(name, data, run, folder / OUTPUTS[name]))
        assert result.exit_code == 0, result.output
        _TOTALS[name] = disk.written
        for entry in folder.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return _TOTALS[name]


# The first write fails, one in the middle, or the very last byte (over an existing output, --overwrite).
POINTS = [("first", False), ("middle", False), ("last", True)]


def ready_to_write(
    name: str, data: Path, run: Path, folder: Path, existing: bool
) -> tuple[Path, list[str], dict]:
    """The command's output path and arguments (with --overwrite over a first, finished output when
    ``existing``), and the folder's contents before the write under test."""
    out = folder / OUTPUTS[name]
    args = command(name, data, run, out)
    if existing:
        assert invoke(*args).exit_code == 0
        args.append("--overwrite")
    return out, args, snapshot(folder)


@pytest.mark.parametrize(("point", "existing"), POINTS, ids=[point for point, _ in POINTS])
@pytest.mark.parametrize("name", ["prepare", "export-data", "generate", "train"])
def test_disk_full_midway(
    name: str, point: str, existing: bool, data: Path, run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    total = total_written(name, data, run, folder)
    # "last": within the last file or two (a run's manifest records timings, whose length may differ a little).
    room = {"first": 0, "middle": total // 2, "last": total - 64}[point]
    out, args, before = ready_to_write(name, data, run, folder, existing)
    with filling_disk(folder, room) as disk:
        result = invoke(*args)
    assert disk.failed
    line = error_line(result, str(out), NO_SPACE)
    assert without_resume_state(name, out, line, snapshot(folder)) == before  # nothing new, changed or left


def without_resume_state(name: str, out: Path, line: str, after: dict[str, bytes | None]) -> dict:
    """``after`` less what a failed `train` keeps for --resume (checked here: the line says so)."""
    checkpoint = f"{out.name}.checkpoint"
    if name != "train" or checkpoint not in after:
        return after
    # The epochs trained before the run could not be written are kept for --resume, and the line says so.
    assert f"kept in {out}.checkpoint" in line and "--resume" in line, line
    kept = {key for key in after if key.startswith(checkpoint + "/")}
    assert f"{checkpoint}/checkpoint.yaml" in kept and all(".tmp" not in key for key in kept), kept
    # The training log goes on with the resume, so it stays beside the checkpoint.
    logs = f"{out.name}.logs"
    kept |= {checkpoint, logs} | {key for key in after if key.startswith(logs + "/")}
    return {key: value for key, value in after.items() if key not in kept}


READ_ONLY_NOTE = (
    "chmod cannot stop this user (root): a read-only folder is writable; run as another user for the real "
    "thing (the 'injected' variant checks the same refusal as root)"
)


@pytest.mark.parametrize("how", ["chmod", "injected"])
@pytest.mark.parametrize("name", ["prepare", "export-data", "generate", "train"])
def test_read_only_output_folder(
    name: str, how: str, data: Path, run: Path, tmp_path: Path, refusals
) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    out = folder / OUTPUTS[name]
    if how == "chmod":
        folder.chmod(0o555)
        try:
            if os.access(folder, os.W_OK):
                pytest.skip(READ_ONLY_NOTE)
            result = invoke(*command(name, data, run, out))
        finally:
            folder.chmod(0o755)
    else:
        refusals.read_only_folder(folder)  # EACCES where the kernel would say it, for root too
        result = invoke(*command(name, data, run, out))
        assert refusals.refused, "the command never tried to write into the read-only folder"
    error_line(result, str(out), os.strerror(errno.EACCES))
    assert snapshot(folder) == {}


# The last step of every atomic write: the complete temporary output renamed onto the output's name.
RENAME_ERRORS = [errno.EACCES, errno.ENOSPC]


@pytest.mark.parametrize("code", RENAME_ERRORS, ids=[errno.errorcode[code] for code in RENAME_ERRORS])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "over-existing"])
@pytest.mark.parametrize("name", ["prepare", "export-data", "generate", "train"])
def test_final_rename_fails(
    name: str, existing: bool, code: int, data: Path, run: Path, tmp_path: Path, refusals
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out, args, before = ready_to_write(name, data, run, folder, existing)
    refusals.failing_rename(out, code)
    result = invoke(*args)
    assert refusals.refused, "the output was never renamed into place"
    line = error_line(result, str(out), os.strerror(code))
    # The old output byte for byte (or none), nothing new beside it, no temporary file.
    after = without_resume_state(name, out, line, snapshot(folder))
    assert after == before


def test_a_finished_file_gets_the_usual_mode(tmp_path: Path) -> None:
    """The temporary file is owner-only while written (mkstemp); the finished one follows the umask."""
    from pepler_cli.predictions import Prediction, write_predictions

    umask = os.umask(0o022)
    try:
        write_predictions(tmp_path / "preds.jsonl", [Prediction("u", "i", "ref", "gen", "f")])
    finally:
        os.umask(umask)
    assert (tmp_path / "preds.jsonl").stat().st_mode & 0o777 == 0o644
