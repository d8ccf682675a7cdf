"""``preds.jsonl``: one prediction a line, the contract between ``generate`` and ``score``.

The format is documented in docs/formats.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.fsutil import atomic_file

_TEXT_FIELDS = ("user", "item", "reference", "generated", "feature")
_RATING_FIELDS = ("rating", "predicted_rating")


@dataclass(frozen=True)
class Prediction:
    """One test record with the explanation (and rating) the model produced for it."""

    user: str
    item: str
    reference: str  # the ground-truth explanation as stored in the prepared dataset
    generated: str  # decoded after cutting at the end-of-sequence token id
    feature: str  # the ground-truth feature, for FMR
    rating: float | None = None
    predicted_rating: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of one line; unknown ratings are left out, as the format says."""
        record: dict[str, Any] = {name: getattr(self, name) for name in _TEXT_FIELDS}
        for name in _RATING_FIELDS:
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        return record


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names[type(value)]


def _parse_record(record: Any, where: str) -> Prediction:
    if not isinstance(record, dict):
        raise PeplerError(f"{where}: expected a JSON object, got {_type_name(record)}")
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name not in record:
            raise PeplerError(f"{where}: missing field '{name}'")
        if not isinstance(record[name], str):
            raise PeplerError(f"{where}: field '{name}' must be a string, got {_type_name(record[name])}")
        values[name] = record[name]
    for name in _RATING_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        # bool is an int subclass in Python, but true/false is never a rating.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PeplerError(f"{where}: field '{name}' must be a number, got {_type_name(value)}")
        if not math.isfinite(value):
            raise PeplerError(f"{where}: field '{name}' must be a finite number, got {value}")
        values[name] = float(value)
    return Prediction(**values)


def read_predictions(path: Path) -> list[Prediction]:
    """Every prediction in ``path``; a bad line raises a one-line PeplerError naming line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such predictions file") from None
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror})") from None
    predictions = []
    # Split on "\n" only: str.splitlines would also break at U+2028 and friends, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():  # blank lines (a trailing newline, say) carry no record
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise PeplerError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
        predictions.append(_parse_record(record, where))
    if not predictions:
        raise PeplerError(f"{path}: contains no predictions")
    return predictions


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """Write one JSON object a line, atomically, so a half-written file never looks complete."""
    with atomic_file(Path(path)) as handle:
        for prediction in predictions:
            handle.write(json.dumps(prediction.to_json(), ensure_ascii=False) + "\n")
