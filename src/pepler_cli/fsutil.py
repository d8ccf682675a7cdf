"""Atomic file and directory writes: a half-written output must never look complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so big files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_user_text(path: Path, what: str) -> str:
    """A user's text file, or a PeplerError that names it and says what is wrong in one line."""
    from pepler_cli.errors import PeplerError

    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise PeplerError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror})") from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a sibling temporary file, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_directory(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; rename it to ``path`` when the block succeeds.

    An existing ``path`` is never touched unless ``overwrite`` is true, and even then it is only replaced
    after the new directory is complete, so a failure leaves the old one intact.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        from pepler_cli.errors import PeplerError

        raise PeplerError(f"{path}: already exists; choose another output or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        _apply_umask(tmp)
        if path.exists():
            # Move the old one aside first so the swap is two renames, never a half-deleted directory.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _apply_umask(root: Path) -> None:
    """mkdtemp and some writers create owner-only entries; give the finished output the usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    root.chmod(0o777 & ~umask)
    for entry in root.rglob("*"):
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)
