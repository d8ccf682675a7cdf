"""Pairs to explain, as a recommender hands them over: ``pepler generate --pairs FILE`` and ``pepler serve``.

A pairs file is JSON lines (one object a line) or CSV with a header row (a name ending in ``.csv``). Each pair
has a ``user`` and an ``item`` (the ids of the prepared dataset), and may have a ``feature`` (the feature to
explain the pair by: a chosen hint, for a run trained with ``--feature-hint``), a ``reference`` (an explanation
to score against) and a ``rating`` (the true rating, for RMSE/MAE). Any other field is refused, so a misspelt
one is not silently ignored. The format is documented in docs/formats.md.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.files import describe, read_json_lines, read_user_text

REQUIRED_FIELDS = ("user", "item")
OPTIONAL_FIELDS = ("feature", "reference", "rating")
PAIR_FIELDS = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)


@dataclass(frozen=True)
class Pair:
    """One (user, item) pair to explain, with what the caller knows of it."""

    user: str
    item: str
    feature: str | None = None  # the feature to explain it by (a chosen hint)
    reference: str | None = None  # an explanation to score against
    rating: float | None = None  # the true rating


def parse_pair(row: Any, where: str, csv_row: bool = False) -> Pair:
    """A pair from one JSON object (or, ``csv_row``, a CSV row: text cells, the empty ones absent); a bad one is
    a PeplerError naming ``where`` and the field."""
    if not isinstance(row, Mapping):
        raise PeplerError(f"{where}: expected a JSON object, got {describe(row, json=True)}")
    unknown = sorted(str(key) for key in row if key not in PAIR_FIELDS)
    if unknown:
        raise PeplerError(f"{where}: field {unknown[0]!r}: unknown (fields: {', '.join(PAIR_FIELDS)})")
    values: dict[str, Any] = {}
    for name in REQUIRED_FIELDS:
        if name not in row or row[name] is None:
            raise PeplerError(f"{where}: missing field '{name}'")
        values[name] = _text(row[name], name, where, numbers_too=True)
    for name in ("feature", "reference"):
        if row.get(name) is not None:
            values[name] = _text(row[name], name, where)
    if row.get("rating") is not None:
        values["rating"] = _rating(row["rating"], where, csv_row)
    return Pair(**values)


def _text(value: Any, name: str, where: str, numbers_too: bool = False) -> str:
    # Ids may be numbers in a recommender's JSON (user 17): they are the dataset's ids written as text.
    if numbers_too and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PeplerError(f"{where}: field '{name}' must be a string, got {describe(value, json=True)}")
    if not value.strip():
        raise PeplerError(f"{where}: field '{name}' is empty")
    return value


def _rating(value: Any, where: str, csv_row: bool) -> float:
    if csv_row and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise PeplerError(f"{where}: field 'rating' must be a number, got {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PeplerError(f"{where}: field 'rating' must be a number, got {describe(value, json=True)}")
    try:
        rating = float(value)
    except OverflowError:
        raise PeplerError(f"{where}: field 'rating' must be a finite number, got a huge integer") from None
    if not math.isfinite(rating):
        raise PeplerError(f"{where}: field 'rating' must be a finite number, got {rating}")
    return rating


@dataclass(frozen=True)
class PairsFile:
    """The pairs of a file in order, and the line each was read from (for messages about a pair)."""

    path: Path
    pairs: list[Pair]
    lines: list[int]

    def where(self, position: int) -> str:
        return f"{self.path}: line {self.lines[position]}"


def read_pairs(path: Path) -> PairsFile:
    """Every pair of ``path`` in order (CSV when its name ends in .csv, else JSON lines); a bad line is a
    PeplerError naming the file, line and field, and a file without pairs is one too."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        read = _csv_pairs(read_user_text(path, "pairs file"), path)
    else:
        read = _json_pairs(path)
    if not read:
        raise PeplerError(f"{path}: contains no pairs")
    return PairsFile(path, [pair for _, pair in read], [line for line, _ in read])


def _json_pairs(path: Path) -> list[tuple[int, Pair]]:
    return [(number, parse_pair(row, where)) for number, where, row in read_json_lines(path, "pairs file")]


def _csv_pairs(text: str, path: Path) -> list[tuple[int, Pair]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    if missing:
        raise PeplerError(f"{path}: line 1: the header has no column '{missing[0]}' (it needs user and item)")
    reader.fieldnames = header
    pairs = []
    try:
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if None in row:  # more cells than the header has names
                raise PeplerError(f"{where}: more cells than the header has columns")
            cells = {key: (value if value != "" else None) for key, value in row.items()}
            pairs.append((reader.line_num, parse_pair(cells, where, csv_row=True)))
    except csv.Error as error:
        raise PeplerError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from None
    return pairs
