"""``preds.jsonl`` and its sidecar ``preds.meta.yaml``: the contract between ``generate`` and ``score``.

``preds.jsonl`` holds one prediction a line. The sidecar records what made them (run, dataset, split, decoding)
and their sha256, so ``pepler score`` can link its scores back to the run. Both formats are documented in
docs/formats.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pepler_cli
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_file, describe, read_json_lines, read_yaml_mapping, write_yaml

META_FORMAT = "pepler-predictions-meta/1"

_TEXT_FIELDS = ("user", "item", "reference", "generated", "feature")
# Predictions of a pairs file (generate --pairs) may have no reference and no feature: the line leaves them out.
_OPTIONAL_TEXT_FIELDS = ("reference", "feature")
_RATING_FIELDS = ("rating", "predicted_rating")
# Prediction.cold: which side of the pair the run knew little or nothing of (generation/cold_start.py).
COLD_MARKS = ("user", "item", "user+item")


@dataclass(frozen=True)
class Prediction:
    """One test record with the explanation (and rating) the model produced for it."""

    user: str
    item: str
    reference: str | None  # the ground-truth explanation (None: a pair given without one, generate --pairs)
    generated: str  # decoded after cutting at the end-of-sequence token id
    feature: str | None  # the ground-truth feature, for FMR (None: a pair given without one)
    rating: float | None = None
    predicted_rating: float | None = None
    cold: str | None = None  # "user", "item" or "user+item": a cold pair (generate --cold-start); None: warm
    hint: str | None = (
        None  # the feature placed in the prompt (generate --feature-hint / --feature); None: none
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of one line; unknown ratings and a warm pair's ``cold`` are left out, as the format
        says."""
        record: dict[str, Any] = {
            name: getattr(self, name) for name in _TEXT_FIELDS if getattr(self, name) is not None
        }
        for name in _RATING_FIELDS:
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        if self.cold is not None:
            record["cold"] = self.cold
        if self.hint is not None:
            record["hint"] = self.hint
        return record


def _parse_record(record: Any, where: str) -> Prediction:
    if not isinstance(record, dict):
        raise PeplerError(f"{where}: expected a JSON object, got {describe(record, json=True)}")
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if record.get(name) is None and name in _OPTIONAL_TEXT_FIELDS:
            values[name] = None
            continue
        if name not in record:
            raise PeplerError(f"{where}: missing field '{name}'")
        if not isinstance(record[name], str):
            raise PeplerError(
                f"{where}: field '{name}' must be a string, got {describe(record[name], json=True)}"
            )
        values[name] = record[name]
    for name in _RATING_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        # bool is an int subclass in Python, but true/false is never a rating.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PeplerError(f"{where}: field '{name}' must be a number, got {describe(value, json=True)}")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond any float
            raise PeplerError(
                f"{where}: field '{name}' must be a finite number, got a huge integer"
            ) from None
        if not math.isfinite(value):
            raise PeplerError(f"{where}: field '{name}' must be a finite number, got {value}")
        values[name] = value
    cold = record.get("cold")
    if cold is not None and (not isinstance(cold, str) or cold not in COLD_MARKS):
        got = repr(cold[:40]) if isinstance(cold, str) else describe(cold, json=True)
        raise PeplerError(f"{where}: field 'cold' must be one of {', '.join(COLD_MARKS)}, got {got}")
    hint = record.get("hint")
    if hint is not None and not isinstance(hint, str):
        raise PeplerError(f"{where}: field 'hint' must be a string, got {describe(hint, json=True)}")
    return Prediction(**values, cold=cold, hint=hint)


def read_predictions(path: Path) -> list[Prediction]:
    """Every prediction in ``path``; a bad line raises a one-line PeplerError naming line and field."""
    path = Path(path)
    predictions = [
        _parse_record(record, where) for _, where, record in read_json_lines(path, "predictions file")
    ]
    if not predictions:
        raise PeplerError(f"{path}: contains no predictions")
    return predictions


def write_predictions(
    path: Path,
    predictions: Iterable[Prediction],
    provenance: Callable[[str], Mapping[str, Any]] | None = None,
) -> None:
    """Write one JSON object a line, atomically, so a half-written file never looks complete.

    With ``provenance`` (called with the predictions' sha256) the sidecar is written too, before the
    predictions are renamed into place: when either cannot be written, the predictions file is left as it
    was. A failure is a PeplerError naming the file.
    """
    path = Path(path)
    sidecar = meta_path(path)
    old_sidecar = sidecar.read_bytes() if provenance is not None and sidecar.is_file() else None
    try:
        with atomic_file(path, "wb") as handle:
            digest = hashlib.sha256()
            for prediction in predictions:
                # A lone surrogate (possible inside a JSON string) becomes a JSON escape such as \udc80.
                line = json.dumps(prediction.to_json(), ensure_ascii=False) + "\n"
                data = line.encode("utf-8", errors="backslashreplace")
                digest.update(data)
                handle.write(data)
            if provenance is not None:
                try:
                    write_meta(path, provenance(digest.hexdigest()))
                except PeplerError as error:
                    raise PeplerError(
                        f"{path}: not written, as its sidecar was not: {error.message}"
                    ) from None
    except BaseException as error:
        if provenance is not None:
            _put_back(sidecar, old_sidecar)
        if isinstance(error, OSError):
            raise PeplerError(f"{path}: cannot write ({error.strerror or error})") from None
        raise


def _put_back(sidecar: Path, old: bytes | None) -> None:
    """The predictions could not be renamed into place after their new sidecar was: restore the sidecar that
    described the predictions still there (or remove the new one when there was none)."""
    with contextlib.suppress(OSError):
        if old is None:
            sidecar.unlink(missing_ok=True)
        else:
            with atomic_file(sidecar, "wb") as handle:
                handle.write(old)


def meta_path(predictions: Path) -> Path:
    """``preds.jsonl`` → ``preds.meta.yaml``: where generate records what made the predictions."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.name.removesuffix('.jsonl')}.meta.yaml")


def write_meta(predictions: Path, provenance: Mapping[str, Any]) -> None:
    """Write the sidecar of ``predictions``: the format, pepler's version, the time, then ``provenance``
    (command, config, run, dataset, and the predictions' path, count and sha256)."""
    document = {
        "format": META_FORMAT,
        "pepler_version": pepler_cli.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **provenance,
    }
    write_yaml(meta_path(predictions), document)


def read_meta(predictions: Path) -> dict[str, Any] | None:
    """The sidecar of ``predictions``, None when there is none; an unreadable one or another format is a
    PeplerError naming the file."""
    path = meta_path(predictions)
    if not path.exists():
        return None
    meta = read_yaml_mapping(path, "predictions meta file")
    if meta.get("format") != META_FORMAT:
        raise PeplerError(f"{path}: field 'format': expected {META_FORMAT!r}")
    return meta


# The sidecar's ``feature_hint`` (generate --feature-hint / --feature): which feature, if any, was placed in the
# prompt. "given" reads the test record's own feature (the PETER+ setting): an upper bound, never a result to
# set beside the others without saying so.
FEATURE_HINT_MODES = ("none", "given", "predicted", "chosen")


def feature_hint_label(meta: Mapping[str, Any] | None) -> str:
    """How a predictions file's feature hint is named in tables and reports; "" without a hint (older
    sidecars have no ``feature_hint``: they had none)."""
    hint = (meta or {}).get("feature_hint") or {}
    mode = hint.get("mode", "none")
    if mode == "given":
        return "given feature (reads the test record)"
    if mode == "predicted":
        return f"predicted feature ({hint.get('predictor') or 'counts'})"
    if mode == "chosen":
        return f"chosen feature: {hint.get('feature')}"
    return ""
