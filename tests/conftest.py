"""Shared fixtures: the tiny GPT-2 with the real tokenizer, and registry hygiene."""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# The real datasets' folder: the `shared_dir` and `shared_file` fixtures of the root conftest.py.


@pytest.fixture(scope="session")
def tiny_backbone():
    from pepler_cli.plugins import get_backbone

    return get_backbone("gpt2-tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_backbone):
    return tiny_backbone.load_tokenizer()


@pytest.fixture
def tiny_lm(tiny_backbone):
    return tiny_backbone.load_model()


@pytest.fixture(scope="session")
def rated_run(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset, run): the NETE fixture prepared, and a tiny continuous-prompt run with an MLP rating head
    trained on it for one epoch; shared by the tests of explaining pairs (test_pairs.py, test_serve.py)."""
    from typer.testing import CliRunner

    from pepler_cli.cli.app import app

    root = tmp_path_factory.mktemp("rated")
    data, run = root / "data", root / "run"
    nete = REPO / "tests" / "fixtures" / "nete-tiny"
    runner = CliRunner()
    prepared = runner.invoke(app, ["prepare", "tripadvisor", "--source", str(nete), "--out", str(data)])
    assert prepared.exit_code == 0, prepared.output
    trained = runner.invoke(
        app,
        ["train", "--data", str(data), "--out", str(run), "--strategy", "joint", "--rating-head", "mlp",
         "--backbone", "gpt2-tiny", "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--logger", "none"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    return data, run


# The feature set of the `scored_dataset` fixture.
SCORED_FEATURES = {"breakfast", "location", "room", "staff"}


@pytest.fixture
def scored_dataset(tmp_path: Path) -> Path:
    """A prepared dataset reduced to what `pepler score` reads: its feature set and its rating range."""
    data = tmp_path / "data" / "hotels"
    data.mkdir(parents=True)
    (data / "features.txt").write_text("".join(f + "\n" for f in sorted(SCORED_FEATURES)), encoding="utf-8")
    (data / "manifest.yaml").write_text(
        "format: pepler-dataset/1\nrating_range: [1.0, 5.0]\n", encoding="utf-8"
    )
    return data


@pytest.fixture(scope="module")
def tokenizer_loaded_once():
    """`prepare` loads GPT-2's tokenizer once for the module instead of once a call (a second each)."""
    import functools
    from types import SimpleNamespace

    from pepler_cli import preparation

    real = preparation.get_backbone
    load = functools.cache(lambda name: real(name).load_tokenizer())
    patch = pytest.MonkeyPatch()
    patch.setattr(
        preparation, "get_backbone", lambda name: SimpleNamespace(load_tokenizer=lambda: load(name))
    )
    yield
    patch.undo()


# ------------------------------------------------------------------------- file-system refusals, as root too

WRITING_MODES = "wax"  # open() modes that may create a file


def _where(path: Any) -> str | None:
    """The real path that ``path`` names, None for a file descriptor."""
    if isinstance(path, int):
        return None
    try:
        return os.path.realpath(os.fsdecode(path))
    except TypeError:
        return None


class Refusals:
    """Refusals of the file system injected at the system calls, where chmod would cause them, so that the
    failed-read and failed-write tests run as root too (chmod cannot stop root, and CI runs as root).

    Each method patches ``os`` and ``open`` until the test ends; ``refused`` lists every path refused, so a
    test can check that the refusal was really met (and did not pass because nothing was tried).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._patch = monkeypatch
        self.refused: list[str] = []

    def _refuse(self, code: int, path: Any) -> None:
        self.refused.append(os.fsdecode(path))
        raise OSError(code, os.strerror(code), os.fsdecode(path))  # EACCES: a PermissionError

    def _wrap_open(self, refuse_when: Any) -> None:
        real_open = builtins.open

        def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if refuse_when(file, mode):
                self._refuse(errno.EACCES, file)
            return real_open(file, mode, *args, **kwargs)

        self._patch.setattr(builtins, "open", fake_open)
        self._patch.setattr(io, "open", fake_open)  # pathlib opens through io.open

    def _wrap_renames(self, refuse_when: Any, code: int) -> None:
        for name in ("replace", "rename"):
            real = getattr(os, name)

            def fake(src: Any, dst: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                if refuse_when(src, dst):
                    self._refuse(code, dst)
                return _real(src, dst, *args, **kwargs)

            self._patch.setattr(os, name, fake)

    def read_only_folder(self, folder: Path) -> None:
        """``folder`` as chmod 555 makes it: no entry can be created in it, renamed into or out of it, or
        removed from it (EACCES); what is already there can still be read."""
        here = os.path.realpath(folder)

        def inside(path: Any) -> bool:
            where = _where(path)
            return where is not None and os.path.dirname(where) == here

        def creates(path: Any) -> bool:
            return inside(path) and not os.path.lexists(path)

        self._wrap_open(lambda file, mode: any(f in mode for f in WRITING_MODES) and creates(file))
        real_os_open, real_mkdir = os.open, os.mkdir

        def fake_os_open(path: Any, flags: int, *args: Any, dir_fd: Any = None, **kwargs: Any) -> int:
            if dir_fd is None and flags & os.O_CREAT and creates(path):
                self._refuse(errno.EACCES, path)
            return real_os_open(path, flags, *args, dir_fd=dir_fd, **kwargs)

        def fake_mkdir(path: Any, *args: Any, dir_fd: Any = None, **kwargs: Any) -> None:
            if dir_fd is None and creates(path):
                self._refuse(errno.EACCES, path)
            return real_mkdir(path, *args, dir_fd=dir_fd, **kwargs)

        self._patch.setattr(os, "open", fake_os_open)  # tempfile.mkstemp, lock files
        self._patch.setattr(os, "mkdir", fake_mkdir)  # tempfile.mkdtemp, Path.mkdir, os.makedirs
        self._wrap_renames(lambda src, dst: inside(src) or inside(dst), errno.EACCES)
        for name in ("unlink", "remove", "rmdir"):
            real = getattr(os, name)

            def fake_remove(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> None:
                if inside(path):
                    self._refuse(errno.EACCES, path)
                return _real(path, *args, **kwargs)

            self._patch.setattr(os, name, fake_remove)

    def unreadable_file(self, path: Path) -> None:
        """``path`` as chmod 0 makes it: opening it fails with EACCES and os.access says so."""
        target = os.path.realpath(path)
        self._wrap_open(lambda file, mode: _where(file) == target)
        real_os_open, real_access = os.open, os.access

        def fake_os_open(file: Any, flags: int, *args: Any, dir_fd: Any = None, **kwargs: Any) -> int:
            if dir_fd is None and _where(file) == target:
                self._refuse(errno.EACCES, file)
            return real_os_open(file, flags, *args, dir_fd=dir_fd, **kwargs)

        def fake_access(file: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
            if mode != os.F_OK and _where(file) == target:
                return False
            return real_access(file, mode, *args, **kwargs)

        self._patch.setattr(os, "open", fake_os_open)
        self._patch.setattr(os, "access", fake_access)

    def failing_rename(self, target: Path, code: int = errno.EACCES) -> None:
        """The first rename onto ``target`` (the last step of an atomic write: the complete new output put in
        place) fails with ``code``; later ones (putting an old output back, say) work."""
        where, done = os.path.realpath(target), []

        def first_onto_target(src: Any, dst: Any) -> bool:
            if done or _where(dst) != where:
                return False
            done.append(dst)
            return True

        self._wrap_renames(first_onto_target, code)


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> Refusals:
    """Inject the file system's refusals (read-only folder, unreadable file, failing rename) as root too."""
    return Refusals(monkeypatch)
