"""Read a pickle that may hold only plain data, never code.

NETE-format datasets ship as ``reviews.pickle``: a list of dicts of strings, numbers and tuples. A pickle is a
small program, though, and an ordinary ``pickle.load`` of a downloaded file runs whatever that program says
(``os.system``, ``subprocess.Popen``, ``builtins.eval``...). :func:`load_plain_pickle` runs the same fast C
unpickler but answers every request for a named global with a refusal.

Why refusing ``find_class`` is enough. The pickle virtual machine can only *call* something it holds on its
stack (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST, BUILD via ``__setstate__``), and the only opcodes that put a
callable or a class on the stack are GLOBAL, STACK_GLOBAL, INST and the extension-registry opcodes
EXT1/EXT2/EXT4; in both the C ``_pickle`` and the pure-Python unpickler every one of them resolves the name
through ``Unpickler.find_class``. Every other opcode builds a literal: None, bool, int, float, str, bytes,
bytearray, tuple, list, dict, set, frozenset. None of those is callable, so REDUCE on them fails with a
TypeError, and BUILD on them finds no ``__setstate__`` and no ``__dict__`` (AttributeError) — no code is run
either way. PERSID/BINPERSID go to ``persistent_load``, which by default refuses too, and NEXT_BUFFER needs
out-of-band buffers that are never passed. So a subclass whose ``find_class`` always raises can build data
but cannot execute anything.

The literals sets, frozensets, bytes and bytearray can still appear without any global; they are inert, and
the callers check the exact shape of every record they read, so such values are reported as wrong types.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from pepler_cli.errors import PeplerError

PLAIN_TYPES = "dicts, lists, tuples, strings, numbers, booleans and None"


class RefusedGlobal(pickle.UnpicklingError):
    """Raised from ``find_class``: the pickle asked for a named global (a class or a function)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class PlainDataUnpickler(pickle.Unpickler):
    """The C unpickler with every global lookup refused: only plain data can come out."""

    def find_class(self, module: str, name: str) -> Any:
        raise RefusedGlobal(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_plain_pickle(path: Path | str, stream: BinaryIO | None = None) -> Any:
    """Unpickle ``path`` (or the already open ``stream`` read from it) admitting plain data only.

    Python 2 ``str`` objects are decoded as UTF-8. Every failure — a refused global, a truncated or corrupt
    file, a non-UTF-8 Python 2 string — becomes a :class:`PeplerError` naming the file.
    """
    path = Path(path)
    try:
        if stream is None:
            with open(path, "rb") as handle:
                return PlainDataUnpickler(handle, encoding="utf-8").load()
        return PlainDataUnpickler(stream, encoding="utf-8").load()
    except RefusedGlobal as refused:
        raise PeplerError(
            f"{path}: refused to unpickle: it asks for the global {refused.qualified_name!r}, and a dataset "
            f"pickle may hold only plain data ({PLAIN_TYPES}); nothing in it was run"
        ) from None
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PeplerError(f"{path}: is a directory, expected a pickle file") from None
    except MemoryError:
        raise PeplerError(f"{path}: ran out of memory while unpickling") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        OverflowError,
        io.UnsupportedOperation,
    ) as error:
        detail = str(error) or type(error).__name__
        raise PeplerError(
            f"{path}: not a readable plain-data pickle ({type(error).__name__}: {detail})"
        ) from None
