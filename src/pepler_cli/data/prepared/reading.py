"""Reading a prepared dataset back, every file checked: a problem is one line naming the file, line and field."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

from pepler_cli.data.cold_start import cold_splits
from pepler_cli.data.prepared import layout
from pepler_cli.data.prepared.fingerprint import verify_hashes
from pepler_cli.data.prepared.records import PreparedDataset, Record
from pepler_cli.errors import PeplerError
from pepler_cli.files import describe, read_user_text, read_yaml_mapping

READ_CHUNK_BYTES = 4 << 20


def load_prepared(path: Path | str, verify: bool = True) -> PreparedDataset:
    """Read ``path`` (a directory written by ``pepler prepare``), checking every file.

    With ``verify`` (the default) each data file's sha256 is recomputed and compared with the manifest, so a
    file edited after prepare is named instead of silently changing results. Problems raise PeplerError
    naming the file, line and field.
    """
    root = Path(path)
    manifest_path = root / layout.MANIFEST_FILE
    manifest = read_manifest(root)

    split_keys = _manifest_split_keys(manifest, manifest_path)
    cold_splits(manifest, manifest_path)  # a malformed splits.cold_start is named on load, not when used
    expected = layout.data_files(split_keys)
    for relative in expected:
        if not (root / relative).is_file():
            raise PeplerError(f"{root / relative}: missing from the prepared dataset")
    if verify:
        verify_hashes(root, manifest, manifest_path, expected)

    records = _read_records(root / layout.RECORDS_FILE)
    n = len(records)
    counts = manifest.get("counts")
    if counts is not None and not isinstance(counts, dict):
        raise PeplerError(f"{manifest_path}: field 'counts': expected a mapping, got {describe(counts)}")
    counted = (counts or {}).get("records")
    if counted is not None and (type(counted) is not int or counted != n):
        raise PeplerError(
            f"{manifest_path}: field 'counts.records' says {counted!r}, but {layout.RECORDS_FILE} holds {n}"
        )
    features = _read_features(root / layout.FEATURES_FILE)
    splits = {
        k: tuple(read_index_file(root / layout.split_file(k, part), n) for part in layout.SPLIT_PARTS)
        for k in split_keys
    }
    return PreparedDataset(records=records, features=features, splits=splits, manifest=manifest, path=root)


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the prepared dataset ``root``, its format checked."""
    manifest_path = Path(root) / layout.MANIFEST_FILE
    if not Path(root).is_dir():
        raise PeplerError(f"{root}: no such prepared dataset directory (make one with `pepler prepare`)")
    if not manifest_path.is_file():
        raise PeplerError(
            f"{manifest_path}: missing; {root} is not a prepared dataset (run `pepler prepare`)"
        )
    manifest = read_yaml_mapping(manifest_path, "dataset manifest")
    if manifest.get("format") != layout.FORMAT:
        raise PeplerError(
            f"{manifest_path}: field 'format': expected {layout.FORMAT!r}, got {manifest.get('format')!r}"
        )
    return manifest


def read_rating_range(root: Path) -> tuple[float, float]:
    """``rating_range: [min, max]`` of the prepared dataset ``root``: the whole dataset's range of ratings."""
    manifest_path = Path(root) / layout.MANIFEST_FILE
    value = read_manifest(root).get("rating_range")
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in value)
        or value[0] > value[1]
    ):
        # No square brackets in the message: the error printer reads them as rich markup.
        raise PeplerError(
            f"{manifest_path}: key 'rating_range' must be two numbers, min then max, got {value!r}"
        )
    return float(value[0]), float(value[1])


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer beyond any float
        return False


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _manifest_split_keys(manifest: Mapping[str, Any], manifest_path: Path) -> list[int]:
    info = manifest.get("splits")
    count = info.get("count") if isinstance(info, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise PeplerError(
            f"{manifest_path}: field 'splits.count': expected a positive integer, got {count!r}"
        )
    last = manifest_path.parent / layout.SPLITS_DIR / str(count)
    if not last.is_dir():  # checked before a list of `count` splits is made: the count may be absurd
        raise PeplerError(f"{manifest_path}: field 'splits.count' is {count}, but {last} is missing")
    return list(range(1, count + 1))


def _read_records(path: Path) -> list[Record]:
    records: list[Record] = []
    append = records.append
    fields = itemgetter("user", "item", "rating", "text", "feature")
    new = tuple.__new__  # Record(...) without the extra Python frame of the NamedTuple constructor
    with open(path, encoding="utf-8", newline="\n") as handle:
        first_line = 1
        while True:
            lines = handle.readlines(READ_CHUNK_BYTES)
            if not lines:
                break
            for offset, row in enumerate(_parse_lines(path, lines, first_line)):
                try:
                    user, item, rating, text, feature = fields(row)
                    opinion, sentiment = row.get("opinion"), row.get("sentiment")
                except (KeyError, TypeError, AttributeError):
                    raise PeplerError(_record_problem(path, first_line + offset, lines[offset])) from None
                if (
                    type(user) is not str
                    or type(item) is not str
                    or (type(rating) is not float and type(rating) is not int)
                    or type(text) is not str
                    or type(feature) is not str
                    or (opinion is not None and type(opinion) is not str)
                    or (
                        sentiment is not None
                        and (type(sentiment) is not int or (sentiment != 1 and sentiment != -1))
                    )
                ):
                    raise PeplerError(_record_problem(path, first_line + offset, lines[offset]))
                append(new(Record, (user, item, float(rating), text, feature, opinion, sentiment)))
            first_line += len(lines)
    return records


def _parse_lines(path: Path, lines: list[str], first_line: int) -> list[Any]:
    """One JSON value per line. A whole chunk is parsed as one JSON array (twice as fast as a call per
    line); every line adds at least one element, so an equal count means each element is its own line.
    """
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        if len(rows) == len(lines):
            return rows
    except ValueError:
        pass
    rows = []
    for offset, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise PeplerError(_record_problem(path, first_line + offset, line)) from None
    return rows


_RECORD_FIELDS = (
    ("user", (str,), "a string"),
    ("item", (str,), "a string"),
    ("rating", (int, float), "a number"),
    ("text", (str,), "a string"),
    ("feature", (str,), "a string"),
)


def _record_problem(path: Path, line_number: int, line: str) -> str:
    """The one-line message for a bad line of records.jsonl (the slow path: only runs on a failure)."""
    where = f"{path}: line {line_number} (record {line_number - 1})"
    try:
        row = json.loads(line)
    except ValueError as error:
        return f"{where}: not valid JSON ({_one_line(error)})"
    if not isinstance(row, dict):
        return f"{where}: expected a JSON object, got {type(row).__name__}"
    for key, types, wanted in _RECORD_FIELDS:
        if key not in row:
            return f"{where}: field '{key}' is missing"
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, types):
            return f"{where}: field '{key}': expected {wanted}, got {value!r}"
    if row.get("opinion") is not None and not isinstance(row["opinion"], str):
        return f"{where}: field 'opinion': expected a string, got {row['opinion']!r}"
    return f"{where}: field 'sentiment': expected 1 or -1, got {row.get('sentiment')!r}"


def _read_features(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: not UTF-8 ({_one_line(error)})") from None
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def read_index_file(path: Path, n_records: int) -> list[int]:
    """Record numbers from a NETE-style index file (any whitespace between them), each in 0..n_records-1."""
    tokens = read_user_text(path, "split index file", not_text="not a text file of record numbers").split()
    try:
        indices = list(map(int, tokens))
    except ValueError:
        position, bad = next((i, t) for i, t in enumerate(tokens) if not _is_int(t))
        raise PeplerError(f"{path}: entry {position + 1} is {bad!r}, not a record number") from None
    if indices and (min(indices) < 0 or max(indices) >= n_records):
        position, bad = next((i, v) for i, v in enumerate(indices) if not 0 <= v < n_records)
        raise PeplerError(
            f"{path}: entry {position + 1} is record {bad}, outside 0..{n_records - 1} (the dataset holds "
            f"{n_records} records)"
        )
    return indices


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True
