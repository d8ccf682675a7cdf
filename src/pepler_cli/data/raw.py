"""Raw reviews (JSON lines or CSV, optionally gzipped) turned into a prepared dataset.

Steps: read and check every line, decoding HTML entities in the text; drop repeated (user, item) pairs, keeping the first; extract one
(feature, opinion, sentence, sentiment) explanation per review with :mod:`pepler_cli.data.extraction`; drop
reviews without one; truncate the sentences to the explanation length (20 GPT-2 tokens in the paper); make
five seeded 8:1:1 splits whose training part holds every user and item (:mod:`pepler_cli.data.splits`); write.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepler_cli.data import extraction
from pepler_cli.data.cold_start import ColdStartSpec
from pepler_cli.data.prepared.records import RecordColumns
from pepler_cli.data.prepared.writing import PrepareResult, Truncation, progress_task, truncate_and_write
from pepler_cli.data.splits import SPLIT_COUNT, SPLIT_METHOD, SPLIT_RATIOS, make_splits
from pepler_cli.data.windows import fit_explanation
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import ensure_new_output, sha256_file


@dataclass(frozen=True)
class FieldMap:
    """Which input field holds what (defaults: the Amazon 2014 review dumps)."""

    user: str = "reviewerID"
    item: str = "asin"
    rating: str = "overall"
    text: str = "reviewText"

    def as_options(self) -> dict[str, str]:
        return {"user": self.user, "item": self.item, "rating": self.rating, "text": self.text}


# Why a review has no explanation (extraction.extractor); each is counted in the manifest as dropped_<reason>.
DROP_REASONS = (extraction.EMPTY, extraction.NO_SENTENCE, extraction.NO_FEATURE, extraction.NO_OPINION)

_OPTION = {"user": "--user-field", "item": "--item-field", "rating": "--rating-field", "text": "--text-field"}


@dataclass
class RawReviews:
    """Reviews as read: parallel lists, in file order."""

    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    ratings: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)


def raw_format(path: Path) -> str:
    """``"csv"`` for .csv/.csv.gz, ``"jsonl"`` for anything else (.json, .jsonl, with or without .gz)."""
    name = path.name.lower()
    name = name.removesuffix(".gz")
    return "csv" if name.endswith(".csv") else "jsonl"


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")


def read_raw_reviews(path: Path, fields: FieldMap = FieldMap(), progress: Any = None) -> RawReviews:
    """Read every review of ``path``; a bad line raises PeplerError naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file (expected raw reviews: JSON lines or CSV, optionally .gz)")
    advance = progress_task(progress, f"reading {path.name}", None)
    reviews = RawReviews()
    rows = _csv_rows(path, fields) if raw_format(path) == "csv" else _json_rows(path)
    try:
        for line_number, row in rows:
            _add_review(reviews, path, line_number, row, fields)
            if len(reviews) % 5000 == 0:
                advance(len(reviews))
    except UnicodeDecodeError as error:
        raise PeplerError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise PeplerError(f"{path}: cannot be read ({' '.join(str(error).split())})") from None
    advance(len(reviews))
    if not reviews.users:
        raise PeplerError(f"{path}: holds no reviews")
    return reviews


def _json_rows(path: Path) -> Iterator[tuple[int, Any]]:
    loads = json.loads
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, loads(line)
            except ValueError as error:
                message = " ".join(str(error).split())
                raise PeplerError(f"{path}: line {line_number}: not valid JSON ({message})") from None
            except RecursionError:
                raise PeplerError(f"{path}: line {line_number}: not valid JSON (nested too deeply)") from None


def _csv_rows(path: Path, fields: FieldMap) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except csv.Error as error:
            raise PeplerError(f"{path}: line 1: not valid CSV ({error})") from None
        for key, name in fields.as_options().items():
            if name not in header:
                columns = ", ".join(header) or "none"
                raise PeplerError(
                    f"{path}: line 1: field {name!r} is not a column (columns: {columns}); set {_OPTION[key]}"
                )
        try:
            for row in reader:
                # line_num is the physical line where this row ended (rows may span lines inside quotes).
                yield reader.line_num, row
        except csv.Error as error:
            raise PeplerError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from None


def _add_review(reviews: RawReviews, path: Path, line_number: int, row: Any, fields: FieldMap) -> None:
    where = f"{path}: line {line_number}"
    if not isinstance(row, dict):
        raise PeplerError(f"{where}: expected a JSON object, got {type(row).__name__}")
    values = []
    for key, name in (
        ("user", fields.user),
        ("item", fields.item),
        ("rating", fields.rating),
        ("text", fields.text),
    ):
        if name not in row:
            raise PeplerError(f"{where}: field {name!r} is missing (choose the field with {_OPTION[key]})")
        values.append(row[name])
    user, item, rating, text = values
    reviews.users.append(_entity(where, fields.user, user))
    reviews.items.append(_entity(where, fields.item, item))
    reviews.ratings.append(_rating(where, fields.rating, rating))
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise PeplerError(
            f"{where}: field {fields.text!r}: expected text, got {type(text).__name__} {text!r:.60}"
        )
    _check_unicode(where, fields.text, text)
    # Review dumps keep HTML entities ("&#34;quick tune&#34;"): decoded before sentences and features are found.
    reviews.texts.append(html.unescape(text) if "&" in text else text)


def _entity(where: str, name: str, value: Any) -> str:
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    else:
        raise PeplerError(f"{where}: field {name!r}: expected an id (text or integer), got {value!r:.60}")
    if not value:
        raise PeplerError(f"{where}: field {name!r}: is empty")
    _check_unicode(where, name, value)
    return value


def _check_unicode(where: str, name: str, text: str) -> None:
    # JSON's \ud800 escapes can make a string no encoding can write (a lone surrogate); the tokenizer and
    # every file written later would fail on it, so it is named here.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise PeplerError(
            f"{where}: field {name!r}: holds the lone surrogate {bad!r} at character {error.start}, which is "
            "not Unicode text"
        ) from None


def _rating(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise PeplerError(f"{where}: field {name!r}: expected a number, got {value!r}")
    try:
        rating = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise PeplerError(f"{where}: field {name!r}: expected a number, got {value!r:.60}") from None
    except OverflowError:  # an integer beyond any float
        raise PeplerError(f"{where}: field {name!r}: expected a finite number, got a huge integer") from None
    if not math.isfinite(rating):
        raise PeplerError(f"{where}: field {name!r}: expected a finite number, got {value!r}")
    return rating


def drop_duplicate_pairs(reviews: RawReviews) -> tuple[RawReviews, int]:
    """Keep the first review of every (user, item) pair; return the rest's count too."""
    seen: set[tuple[str, str]] = set()
    kept = RawReviews()
    for user, item, rating, text in zip(reviews.users, reviews.items, reviews.ratings, reviews.texts):
        pair = (user, item)
        if pair in seen:
            continue
        seen.add(pair)
        kept.users.append(user)
        kept.items.append(item)
        kept.ratings.append(rating)
        kept.texts.append(text)
    return kept, len(reviews) - len(kept)


def explain_reviews(
    reviews: RawReviews, progress: Any = None, reasons: Counter[str] | None = None
) -> tuple[RecordColumns, int]:
    """One explanation per review; reviews without one are dropped (their count is returned too, and
    ``reasons`` counts why)."""
    advance = progress_task(progress, "extracting features", len(reviews))
    explanations = extraction.extract_explanations(reviews.texts, progress=advance, reasons=reasons)
    if len(explanations) != len(reviews):
        raise PeplerError(
            f"the feature extractor returned {len(explanations)} results for {len(reviews)} reviews (a bug)"
        )
    columns = RecordColumns([], [], [], [], [], [], [])
    assert columns.opinions is not None and columns.sentiments is not None
    for user, item, rating, found in zip(reviews.users, reviews.items, reviews.ratings, explanations):
        if found is None:
            continue
        columns.users.append(user)
        columns.items.append(item)
        columns.ratings.append(rating)
        columns.texts.append(found.sentence)
        columns.features.append(found.feature)
        columns.opinions.append(found.opinion)
        columns.sentiments.append(int(found.sentiment))
    advance(len(reviews))
    return columns, len(reviews) - len(columns)


def keep_features_in_limit(columns: RecordColumns, truncation: Truncation) -> tuple[RecordColumns, int]:
    """Each explanation cut to a part that fits the token limit and still names its feature
    (:mod:`pepler_cli.data.windows`); those with no such part are dropped (their count is returned too)."""
    tokenizer, limit = truncation.tokenizer, truncation.max_tokens

    def count(text: str) -> int:
        return len(tokenizer([text], add_special_tokens=False)["input_ids"][0])

    def cut(text: str) -> str:
        return tokenizer.decode(tokenizer([text], add_special_tokens=False)["input_ids"][0][:limit])

    kept = RecordColumns([], [], [], [], [], [], [])
    assert (
        kept.opinions is not None and kept.sentiments is not None and columns.opinions and columns.sentiments
    )
    for row in zip(
        columns.users,
        columns.items,
        columns.ratings,
        columns.texts,
        columns.features,
        columns.opinions,
        columns.sentiments,
    ):
        user, item, rating, text, feature, opinion, sentiment = row
        fitted = fit_explanation(text, feature, opinion or "", limit, count, cut)
        if fitted is None:
            continue
        for column, value in zip(
            (kept.users, kept.items, kept.ratings, kept.texts, kept.features, kept.opinions, kept.sentiments),
            (user, item, rating, fitted, feature, opinion, sentiment),
        ):
            column.append(value)
    return kept, len(columns) - len(kept)


def prepare_raw(
    path: Path,
    out: Path,
    *,
    truncation: Truncation,
    name: str,
    fields: FieldMap = FieldMap(),
    seed: int = 1234,
    overwrite: bool = False,
    config: Mapping[str, Any] | None = None,
    progress: Any = None,
    cold_start: ColdStartSpec | None = None,
) -> PrepareResult:
    """Prepare raw reviews ``path`` into ``out``: extraction, truncation as ``truncation`` says, five seeded
    splits (and the two cold-start splits ``cold_start`` asks for)."""
    path = Path(path)
    ensure_new_output(Path(out), overwrite)
    reviews = read_raw_reviews(path, fields, progress)
    read = len(reviews)
    reviews, duplicates = drop_duplicate_pairs(reviews)
    reasons: Counter[str] = Counter()
    columns, unexplained = explain_reviews(reviews, progress, reasons)
    del reviews
    if len(columns) == 0:
        raise PeplerError(
            f"{path}: no review yielded an explanation (read {read}, duplicates {duplicates}); is "
            f"--text-field {fields.text!r} the review text?"
        )
    columns, too_long = keep_features_in_limit(columns, truncation)
    splits = make_splits(columns.users, columns.items, seed=seed, count=SPLIT_COUNT, ratios=SPLIT_RATIOS)
    manifest_fields = {
        "name": name,
        "source": {
            "kind": "raw",
            "path": str(path.resolve()),
            "format": raw_format(path),
            "fields": fields.as_options(),
            "sha256": {path.name: sha256_file(path)},
        },
        "splits_info": {
            "count": SPLIT_COUNT,
            "method": SPLIT_METHOD,
            "seed": seed,
            "ratios": list(SPLIT_RATIOS),
        },
        "extra_counts": {
            "reviews_read": read,
            "reviews_dropped": duplicates + unexplained + too_long,
            "dropped_duplicates": duplicates,
            "dropped_no_explanation": unexplained,
            **{f"dropped_{reason}": reasons[reason] for reason in DROP_REASONS},
            "dropped_feature_beyond_limit": too_long,
        },
        "config": config,
        "overwrite": overwrite,
    }
    # make_splits leaves validation/test empty only for data too sparse to spare a record (check_split).
    return truncate_and_write(
        Path(out),
        columns,
        splits,
        truncation,
        progress,
        allow_empty=True,
        cold_start=cold_start,
        **manifest_fields,
    )
