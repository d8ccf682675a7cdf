"""Files on disk: reading users' text and YAML, hashing, and atomic writes.

Every output pepler writes goes to a temporary sibling that is renamed into place when complete, so a
half-written output never looks finished. Every YAML file is read through :func:`read_yaml_mapping` (the safe
loader, one error style) and written through :func:`yaml_text`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from pepler_cli.errors import PeplerError


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so big files do not fill memory."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
    except PermissionError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror})") from None
    return digest.hexdigest()


def read_user_text(path: Path, what: str, not_text: str = "not UTF-8 text") -> str:
    """A user's text file, or a PeplerError that names it and says what is wrong in one line (``not_text``:
    how it says that the bytes are not UTF-8)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise PeplerError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: {not_text} (byte {error.start})") from None
    except OSError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror or error})") from None


def ensure_new_output(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless asked: checked before the work, so none is wasted."""
    if Path(path).exists() and not overwrite:
        raise PeplerError(f"{path}: already exists; choose another --out or pass --overwrite")


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold the lock of an output (a sibling ``.<name>.lock``) so that a second process writing the same
    output is refused instead of racing the first.

    The lock is an OS file lock, which the kernel releases when its process ends however it ends: a killed
    process never leaves it stuck (the small file it leaves behind is reused); a finished one removes it.
    """
    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock_path, path)
    except OSError as error:  # a read-only folder, say
        raise PeplerError(f"{path}: cannot write ({error.strerror or error})") from None
    try:
        with contextlib.suppress(OSError):  # the pid only makes the refusal's message more helpful
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # while still holding it: whoever opens the name next gets a fresh file
        os.close(fd)  # releases the lock


def _acquire(lock_path: Path, path: Path) -> int:
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise PeplerError(
                f"{path}: another pepler process (pid {holder}) is writing it; wait for it to finish or "
                "choose another --out"
            )
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder removed as it finished: take the current one


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping, read with the safe loader; any problem is one line naming it."""
    text = read_user_text(Path(path), what)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PeplerError(f"{path}: not valid YAML: {first}") from None
    except ValueError as error:  # an integer of more than 4300 digits, which Python refuses to convert
        raise PeplerError(f"{path}: not valid YAML: {str(error).split(':')[0]}") from None
    except RecursionError:
        raise PeplerError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(loaded, dict):
        raise PeplerError(f"{path}: expected a mapping of keys to values (a {what}), got {describe(loaded)}")
    return loaded


def read_json_lines(path: Path, what: str) -> Iterator[tuple[int, str, Any]]:
    """A user's JSON-lines file: (line number, where, value) for each non-blank line, ``where`` being how
    messages name it (``path: line 3``); a line that is no JSON is a PeplerError in that style.

    Split on "\\n" only: str.splitlines would also break at U+2028 and friends, which JSON strings may hold.
    """
    for number, line in enumerate(read_user_text(Path(path), what).split("\n"), start=1):
        if not line.strip():  # blank lines (a trailing newline, say) hold nothing
            continue
        where = f"{path}: line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise PeplerError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
        except ValueError as error:  # an integer of more than 4300 digits, which Python refuses to convert
            raise PeplerError(f"{where}: not valid JSON ({str(error).split(':')[0]})") from None
        except RecursionError:
            raise PeplerError(f"{where}: not valid JSON (nested too deeply)") from None
        yield number, where, value


class _Dumper(yaml.SafeDumper):
    """The safe dumper, with lists of scalars written inline: ``rating_range: [1.0, 5.0]``."""


def _represent_list(dumper: yaml.SafeDumper, value: list) -> Any:
    flat = all(not isinstance(element, (list, dict)) for element in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def yaml_text(document: Mapping[str, Any]) -> str:
    """A document as pepler writes YAML: keys in their given order, Unicode kept, lists of scalars inline."""
    return yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=110,
    )


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` atomically; a failure is one line naming the file."""
    try:
        atomic_write_text(path, yaml_text(document))
    except OSError as error:
        raise PeplerError(f"{path}: cannot write ({error.strerror})") from None


def describe(value: Any, json: bool = False) -> str:
    """What kind of value a file held, in words for error messages: YAML's words, or JSON's with ``json``."""
    if value is None:
        return "null" if json else "nothing"
    if isinstance(value, bool):
        return "a boolean" if json else "true/false"
    names = {int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    if json:
        names[dict] = "an object"
    return names.get(type(value), type(value).__name__)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a sibling temporary file, then rename it over ``path``."""
    with atomic_file(path) as handle:
        handle.write(text)


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
        # mkstemp made it owner-only; the finished file gets the usual mode.
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_directory(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; rename it to ``path`` when the block succeeds.

    An existing ``path`` is never touched unless ``overwrite`` is true, and even then it is only replaced
    after the new directory is complete, so a failure leaves the old one intact. A failure to write (a full
    disk, a read-only folder) is a PeplerError naming ``path`` and why.
    """
    path = Path(path)
    ensure_new_output(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as error:
        raise PeplerError(f"{path}: cannot write ({error.strerror or error})") from None
    try:
        yield tmp
        _apply_umask(tmp)
        if path.exists():
            # Move the old one aside first so the swap is two renames, never a half-deleted directory.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            old.rmdir()
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old, path)  # the new one cannot go in: the old one goes back, whole
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PeplerError(f"{path}: cannot write ({error.strerror or error})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _apply_umask(root: Path) -> None:
    """mkdtemp and some writers create owner-only entries; give the finished output the usual modes."""
    umask = _umask()
    root.chmod(0o777 & ~umask)
    for entry in root.rglob("*"):
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~umask)
