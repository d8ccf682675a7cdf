"""The prepared dataset ``data/<name>/``: write it atomically, read it back with every file checked.

Layout and record format are specified in docs/formats.md. Beyond the keys documented there the manifest
holds ``files`` (the sha256 of every data file, so a changed file is named on load), ``config`` (the resolved
``pepler prepare`` options) and, for raw reviews, the drop counts ``dropped_duplicates`` and
``dropped_no_explanation`` under ``counts``.

The fingerprint is the sha256 of the lines ``"<relative path> <sha256 of the file>\\n"`` for records.jsonl,
features.txt and splits/<k>/{train,validation,test}.index (k ascending), in that order: one hash that a run
manifest can quote to say exactly which data it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from json.encoder import encode_basestring as quote  # type: ignore[attr-defined]
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import pepler_cli
from pepler_cli import text_cleanup
from pepler_cli.data.splits import check_split
from pepler_cli.data.stats import DatasetStatistics, compute_statistics
from pepler_cli.data.truncation import truncate_texts
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_directory, describe, read_yaml_mapping, sha256_file, yaml_text
from pepler_cli.paper import MAX_EXPLANATION_TOKENS, TRUNCATION_TOKENIZER

FORMAT = "pepler-dataset/1"
MANIFEST_FILE = "manifest.yaml"
RECORDS_FILE = "records.jsonl"
FEATURES_FILE = "features.txt"
SPLITS_DIR = "splits"
SPLIT_PARTS = ("train", "validation", "test")
WRITE_CHUNK = 20_000
READ_CHUNK_BYTES = 4 << 20

Split = tuple[list[int], list[int], list[int]]
Advance = Callable[[int], None]


class Record(NamedTuple):
    """One review: who, what, the rating, and its explanation with the feature it talks about.

    A NamedTuple rather than a dataclass: a million of them are built on load, and a tuple is built several
    times faster and is smaller.
    """

    user: str
    item: str
    rating: float
    text: str
    feature: str
    opinion: str | None = None
    sentiment: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The records.jsonl object of this record (opinion and sentiment only where known)."""
        row: dict[str, Any] = {
            "user": self.user,
            "item": self.item,
            "rating": self.rating,
            "text": self.text,
            "feature": self.feature,
        }
        if self.opinion is not None:
            row["opinion"] = self.opinion
        if self.sentiment is not None:
            row["sentiment"] = self.sentiment
        return row


@dataclass
class RecordColumns:
    """Records as parallel lists: what ``prepare`` builds, cheaper than a million small objects."""

    users: list[str]
    items: list[str]
    ratings: list[float]
    texts: list[str]
    features: list[str]
    opinions: list[str | None] | None = None
    sentiments: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> RecordColumns:
        return cls(
            users=[r.user for r in records],
            items=[r.item for r in records],
            ratings=[r.rating for r in records],
            texts=[r.text for r in records],
            features=[r.feature for r in records],
            opinions=[r.opinion for r in records],
            sentiments=[r.sentiment for r in records],
        )

    def to_records(self) -> list[Record]:
        n = len(self.users)
        opinions = self.opinions if self.opinions is not None else [None] * n
        sentiments = self.sentiments if self.sentiments is not None else [None] * n
        return [
            Record(*row)
            for row in zip(
                self.users, self.items, self.ratings, self.texts, self.features, opinions, sentiments
            )
        ]


@dataclass
class PreparedDataset:
    """A prepared dataset in memory: records in record-number order, the feature set, the splits."""

    records: list[Record]
    features: list[str]
    splits: dict[int, Split]
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name if self.path else ""))

    @property
    def fingerprint(self) -> str:
        return str(self.manifest.get("fingerprint", ""))

    def split_records(self, k: int) -> tuple[list[Record], list[Record], list[Record]]:
        """The records of split ``k`` (1-based): train, validation, test."""
        if k not in self.splits:
            known = ", ".join(str(key) for key in sorted(self.splits))
            raise PeplerError(f"{self.path or self.name}: no split {k}; the dataset has splits {known}", 2)
        records = self.records
        train, validation, test = self.splits[k]
        return [records[i] for i in train], [records[i] for i in validation], [records[i] for i in test]

    @property
    def splits_checked(self) -> bool:
        """Whether ``prepare`` checked the splits (manifest ``splits.checked``); datasets of older peplers did not."""
        info = self.manifest.get("splits")
        return isinstance(info, dict) and info.get("checked") is True

    @property
    def unseen_allowed(self) -> bool:
        """Whether ``prepare --allow-unseen`` kept validation/test records with ids training never holds."""
        info = self.manifest.get("splits")
        return isinstance(info, dict) and info.get("allow_unseen") is True

    def check_split(self, k: int, allow_unseen: bool, allow_empty: bool = False) -> dict[str, dict[str, int]]:
        """:func:`~pepler_cli.data.splits.check_split` on split ``k`` of this dataset."""
        records = self.records
        return check_split(
            self.path or self.name,
            k,
            self.splits[k],
            [r.user for r in records],
            [r.item for r in records],
            allow_unseen=allow_unseen,
            allow_empty=allow_empty,
        )

    def training_ids(self, k: int) -> tuple[set[str], set[str]]:
        """The users and the items of split ``k``'s training part: those a run on that split has trained."""
        records = self.records
        train = self.splits[k][0]
        return {records[i].user for i in train}, {records[i].item for i in train}

    def users(self) -> list[str]:
        """Distinct users in order of first appearance (a stable id per user)."""
        return list(dict.fromkeys(r.user for r in self.records))

    def items(self) -> list[str]:
        """Distinct items in order of first appearance (a stable id per item)."""
        return list(dict.fromkeys(r.item for r in self.records))


@dataclass
class PrepareResult:
    """What ``prepare`` made: where, its manifest, and the Table-4 statistics to show."""

    out: Path
    manifest: dict[str, Any]
    statistics: DatasetStatistics


def split_file(k: int, part: str) -> str:
    return f"{SPLITS_DIR}/{k}/{part}.index"


def data_files(split_keys: Sequence[int]) -> list[str]:
    """Every file the fingerprint covers, in fingerprint order."""
    return [RECORDS_FILE, FEATURES_FILE] + [
        split_file(k, part) for k in sorted(split_keys) for part in SPLIT_PARTS
    ]


def dataset_fingerprint(file_hashes: Mapping[str, str]) -> str:
    """sha256 over ``"<path> <sha256>\\n"`` of the data files, in :func:`data_files` order."""
    keys = sorted(int(path.split("/")[1]) for path in file_hashes if path.startswith(SPLITS_DIR + "/"))
    digest = hashlib.sha256()
    for path in data_files(sorted(set(keys))):
        digest.update(f"{path} {file_hashes[path]}\n".encode())
    return digest.hexdigest()


def progress_task(progress: Any, description: str, total: int | None) -> Advance:
    """An ``advance(done)`` callback for a new task of a rich Progress; a no-op when ``progress`` is None."""
    if progress is None:
        return lambda done: None
    task = progress.add_task(description, total=total)
    return lambda done: progress.update(task, completed=done)


# ----------------------------------------------------------------------------------------------- writing


def write_prepared(
    out: Path,
    records: RecordColumns | Sequence[Record],
    splits: Mapping[int, Split],
    *,
    name: str,
    source: Mapping[str, Any],
    splits_info: Mapping[str, Any],
    extra_counts: Mapping[str, int] | None = None,
    config: Mapping[str, Any] | None = None,
    max_explanation_tokens: int = MAX_EXPLANATION_TOKENS,
    tokenizer: str = TRUNCATION_TOKENIZER,
    clean_up_spaces: bool = True,
    statistics: DatasetStatistics | None = None,
    overwrite: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Write ``out`` atomically (a temporary sibling renamed at the end) and return its manifest.

    ``records`` must already hold truncated explanations; the feature set, counts, statistics, rating range
    and fingerprint are computed here. ``extra_counts`` adds e.g. reviews_read/reviews_dropped to ``counts``.
    ``statistics`` may pass a precomputed :class:`~pepler_cli.data.stats.DatasetStatistics`.
    """

    columns = records if isinstance(records, RecordColumns) else RecordColumns.from_records(records)
    n = len(columns)
    if n == 0:
        raise PeplerError(f"{out}: nothing to write: no records are left")
    if not all(map(math.isfinite, columns.ratings)):
        number = next(i for i, rating in enumerate(columns.ratings) if not math.isfinite(rating))
        raise PeplerError(f"{out}: record {number}: rating {columns.ratings[number]} is not a finite number")
    _check_splits_in_range(splits, n, str(out))
    feature_set = sorted(set(columns.features))
    stats = statistics or compute_statistics(columns.users, columns.items, columns.texts, feature_set)

    counts: dict[str, int] = {
        "users": stats.users,
        "items": stats.items,
        "records": n,
        "features": len(feature_set),
    }
    counts.update(extra_counts or {})
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "pepler_version": pepler_cli.__version__,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "source": dict(source),
        "counts": counts,
        "statistics": {
            "records_per_user": stats.records_per_user,
            "records_per_item": stats.records_per_item,
            "words_per_explanation": stats.words_per_explanation,
        },
        "rating_range": [float(min(columns.ratings)), float(max(columns.ratings))],
        "max_explanation_tokens": max_explanation_tokens,
        "tokenizer": tokenizer,
        "splits": dict(splits_info),
    }

    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        hashes: dict[str, str] = {}
        advance = progress_task(progress, f"writing {RECORDS_FILE}", n)
        hashes[RECORDS_FILE] = _write_records(tmp / RECORDS_FILE, columns, advance)
        hashes[FEATURES_FILE] = _write_hashed(tmp / FEATURES_FILE, "".join(f"{f}\n" for f in feature_set))
        for k in sorted(splits):
            (tmp / SPLITS_DIR / str(k)).mkdir(parents=True)
            for part, indices in zip(SPLIT_PARTS, splits[k]):
                path = split_file(k, part)
                hashes[path] = _write_hashed(tmp / path, " ".join(map(str, indices)) + "\n")
        manifest["fingerprint"] = dataset_fingerprint(hashes)
        manifest["files"] = hashes
        if config is not None:
            manifest["config"] = dict(config)
        manifest["clean_up_spaces"] = clean_up_spaces
        _write_hashed(tmp / MANIFEST_FILE, yaml_text(manifest))
    return manifest


@dataclass(frozen=True)
class Truncation:
    """How explanations are cut: to ``max_tokens`` tokens of ``tokenizer``, named ``name`` in the manifest."""

    tokenizer: Any
    max_tokens: int = MAX_EXPLANATION_TOKENS
    name: str = TRUNCATION_TOKENIZER
    clean_up_spaces: bool = True  # as the authors' decode did (text_cleanup.py); off: the text as decoded


def truncate_and_write(
    out: Path,
    columns: RecordColumns,
    splits: Mapping[int, Split],
    truncation: Truncation,
    progress: Any = None,
    *,
    allow_unseen: bool = False,
    allow_empty: bool = False,
    **manifest_fields: Any,
) -> PrepareResult:
    """The last steps of every source: check the splits, cut the explanations, compute the statistics, write
    ``out``.

    ``manifest_fields`` are :func:`write_prepared`'s keywords (name, source, splits_info, ...). Every split is
    checked first (:func:`~pepler_cli.data.splits.check_split`), so a bad one costs no truncation; what the
    check found goes into ``splits_info``. ``allow_empty`` lets validation or test be empty (only for the
    splits pepler makes itself, see ``check_split``).
    """
    where = (manifest_fields.get("source") or {}).get("path") or out
    checked = checked_splits_info(where, splits, columns.users, columns.items, allow_unseen, allow_empty)
    manifest_fields["splits_info"] = {**manifest_fields.get("splits_info", {}), **checked}
    limit = truncation.max_tokens
    advance = progress_task(progress, f"truncating to {limit} tokens", len(set(columns.texts)))
    columns.texts = truncate_texts(columns.texts, limit, truncation.tokenizer, progress=advance)
    if truncation.clean_up_spaces:
        cleaned = {text: text_cleanup.clean_up_spaces(text) for text in set(columns.texts)}
        columns.texts = [cleaned[text] for text in columns.texts]
    statistics = compute_statistics(columns.users, columns.items, columns.texts, columns.features)
    manifest = write_prepared(
        out,
        columns,
        splits,
        max_explanation_tokens=limit,
        tokenizer=truncation.name,
        clean_up_spaces=truncation.clean_up_spaces,
        statistics=statistics,
        progress=progress,
        **manifest_fields,
    )
    return PrepareResult(out=Path(out), manifest=manifest, statistics=statistics)


def checked_splits_info(
    where: object,
    splits: Mapping[int, Split],
    users: Sequence[str],
    items: Sequence[str],
    allow_unseen: bool,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Check every split; the manifest's record of it: ``checked``, ``allow_unseen`` and, when records with
    unseen ids were kept, ``unseen`` (split -> part -> counts of records with an unseen user / item)."""
    info: dict[str, Any] = {"checked": True, "allow_unseen": allow_unseen}
    unseen: dict[int, Any] = {}
    for k in sorted(splits):
        counts = check_split(
            where, k, splits[k], users, items, allow_unseen=allow_unseen, allow_empty=allow_empty
        )
        kept = {part: found for part, found in counts.items() if any(found.values())}
        if kept:
            unseen[k] = kept
    if unseen:
        info["unseen"] = unseen
    return info


def _write_hashed(path: Path, text: str) -> str:
    data = text.encode("utf-8", errors="backslashreplace")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _record_lines(columns: RecordColumns) -> Iterator[str]:
    # Formatting the line directly is about four times faster than json.dumps of a dict per record; the
    # strings still go through json's own C string encoder, and ratings are finite floats (repr is JSON).
    n = len(columns)
    opinions = columns.opinions if columns.opinions is not None else [None] * n
    sentiments = columns.sentiments if columns.sentiments is not None else [None] * n
    for user, item, rating, text, feature, opinion, sentiment in zip(
        columns.users, columns.items, columns.ratings, columns.texts, columns.features, opinions, sentiments
    ):
        line = (
            f'{{"user": {quote(user)}, "item": {quote(item)}, "rating": {float(rating)!r}, '
            f'"text": {quote(text)}, "feature": {quote(feature)}'
        )
        if opinion is not None:
            line += f', "opinion": {quote(opinion)}'
        if sentiment is not None:
            line += f', "sentiment": {int(sentiment)}'
        yield line + "}"


def _write_records(path: Path, columns: RecordColumns, advance: Advance) -> str:
    digest = hashlib.sha256()
    lines = _record_lines(columns)
    done = 0
    with open(path, "wb") as handle:
        while True:
            chunk = [line for _, line in zip(range(WRITE_CHUNK), lines)]
            if not chunk:
                break
            chunk.append("")
            # A lone surrogate (only possible inside a JSON string) becomes a JSON escape such as \udc80.
            data = "\n".join(chunk).encode("utf-8", errors="backslashreplace")
            digest.update(data)
            handle.write(data)
            done += len(chunk) - 1
            advance(done)
    return digest.hexdigest()


def _check_splits_in_range(splits: Mapping[int, Split], n: int, where: str) -> None:
    for k, parts in splits.items():
        for part, indices in zip(SPLIT_PARTS, parts):
            if indices and (min(indices) < 0 or max(indices) >= n):
                raise PeplerError(f"{where}: split {k} {part} holds record numbers outside 0..{n - 1}")


# ----------------------------------------------------------------------------------------------- reading


def load_prepared(path: Path | str, verify: bool = True) -> PreparedDataset:
    """Read ``path`` (a directory written by ``pepler prepare``), checking every file.

    With ``verify`` (the default) each data file's sha256 is recomputed and compared with the manifest, so a
    file edited after prepare is named instead of silently changing results. Problems raise PeplerError
    naming the file, line and field.
    """
    root = Path(path)
    manifest_path = root / MANIFEST_FILE
    manifest = read_manifest(root)

    split_keys = _manifest_split_keys(manifest, manifest_path)
    expected = data_files(split_keys)
    for relative in expected:
        if not (root / relative).is_file():
            raise PeplerError(f"{root / relative}: missing from the prepared dataset")
    if verify:
        _verify_hashes(root, manifest, manifest_path, expected)

    records = _read_records(root / RECORDS_FILE)
    n = len(records)
    counts = manifest.get("counts")
    if counts is not None and not isinstance(counts, dict):
        raise PeplerError(f"{manifest_path}: field 'counts': expected a mapping, got {describe(counts)}")
    counted = (counts or {}).get("records")
    if counted is not None and (type(counted) is not int or counted != n):
        raise PeplerError(
            f"{manifest_path}: field 'counts.records' says {counted!r}, but {RECORDS_FILE} holds {n}"
        )
    features = _read_features(root / FEATURES_FILE)
    splits = {
        k: tuple(read_index_file(root / split_file(k, part), n) for part in SPLIT_PARTS) for k in split_keys
    }
    return PreparedDataset(records=records, features=features, splits=splits, manifest=manifest, path=root)


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the prepared dataset ``root``, its format checked."""
    manifest_path = Path(root) / MANIFEST_FILE
    if not Path(root).is_dir():
        raise PeplerError(f"{root}: no such prepared dataset directory (make one with `pepler prepare`)")
    if not manifest_path.is_file():
        raise PeplerError(
            f"{manifest_path}: missing; {root} is not a prepared dataset (run `pepler prepare`)"
        )
    manifest = read_yaml_mapping(manifest_path, "dataset manifest")
    if manifest.get("format") != FORMAT:
        raise PeplerError(
            f"{manifest_path}: field 'format': expected {FORMAT!r}, got {manifest.get('format')!r}"
        )
    return manifest


def feature_file(root: Path) -> Path:
    """The file of a prepared dataset's feature set, one feature a line."""
    return Path(root) / FEATURES_FILE


def read_rating_range(root: Path) -> tuple[float, float]:
    """``rating_range: [min, max]`` of the prepared dataset ``root``: the whole dataset's range of ratings."""
    manifest_path = Path(root) / MANIFEST_FILE
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
    last = manifest_path.parent / SPLITS_DIR / str(count)
    if not last.is_dir():  # checked before a list of `count` splits is made: the count may be absurd
        raise PeplerError(f"{manifest_path}: field 'splits.count' is {count}, but {last} is missing")
    return list(range(1, count + 1))


def _verify_hashes(root: Path, manifest: Mapping[str, Any], manifest_path: Path, expected: list[str]) -> None:
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise PeplerError(f"{manifest_path}: field 'files': missing (the sha256 of every data file)")
    actual = {relative: sha256_file(root / relative) for relative in expected}
    for relative in expected:
        if recorded.get(relative) != actual[relative]:
            raise PeplerError(
                f"{root / relative}: changed since it was prepared (its sha256 differs from {MANIFEST_FILE} "
                "field 'files'); prepare the dataset again"
            )
    if manifest.get("fingerprint") != dataset_fingerprint(actual):
        raise PeplerError(f"{manifest_path}: field 'fingerprint' does not match the data files")


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
    try:
        tokens = path.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: not a text file of record numbers ({_one_line(error)})") from None
    except OSError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror or error})") from None
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
