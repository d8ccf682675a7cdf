"""Writing a prepared dataset: check the splits, cut the explanations, compute the statistics, and write
``data/<name>/`` atomically (a temporary sibling renamed at the end).

Beyond the keys documented in docs/formats.md the manifest holds ``files`` (the sha256 of every data file, see
``fingerprint``), ``config`` (the resolved ``pepler prepare`` options) and, for raw reviews, the drop counts
``dropped_duplicates`` and ``dropped_no_explanation`` under ``counts``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring as quote  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import pepler_cli
from pepler_cli import text_cleanup
from pepler_cli.data.cold_start import ColdStartSpec, add_cold_splits
from pepler_cli.data.prepared.fingerprint import dataset_fingerprint
from pepler_cli.data.prepared.layout import (
    FEATURES_FILE,
    FORMAT,
    MANIFEST_FILE,
    RECORDS_FILE,
    SPLIT_PARTS,
    SPLITS_DIR,
    Split,
    split_file,
)
from pepler_cli.data.prepared.records import Record, RecordColumns
from pepler_cli.data.splits import check_split
from pepler_cli.data.stats import DatasetStatistics, compute_statistics
from pepler_cli.data.truncation import truncate_texts
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_directory, yaml_text
from pepler_cli.paper import MAX_EXPLANATION_TOKENS, TRUNCATION_TOKENIZER

WRITE_CHUNK = 20_000

Advance = Callable[[int], None]


@dataclass
class PrepareResult:
    """What ``prepare`` made: where, its manifest, and the Table-4 statistics to show."""

    out: Path
    manifest: dict[str, Any]
    statistics: DatasetStatistics


def progress_task(progress: Any, description: str, total: int | None) -> Advance:
    """An ``advance(done)`` callback for a new task of a rich Progress; a no-op when ``progress`` is None."""
    if progress is None:
        return lambda done: None
    task = progress.add_task(description, total=total)
    return lambda done: progress.update(task, completed=done)


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
    cold_start: ColdStartSpec | None = None,
    **manifest_fields: Any,
) -> PrepareResult:
    """The last steps of every source: add the cold-start splits, check the splits, cut the explanations,
    compute the statistics, write ``out``.

    ``manifest_fields`` are :func:`write_prepared`'s keywords (name, source, splits_info, ...). With
    ``cold_start`` the user and item cold splits (:mod:`pepler_cli.data.cold_start`) follow ``splits``, and
    ``splits_info`` counts them and records them under ``cold_start``. Every split is checked first
    (:func:`~pepler_cli.data.splits.check_split`), so a bad one costs no truncation; what the check found goes
    into ``splits_info``. ``allow_empty`` lets validation or test be empty (only for the splits pepler makes
    itself, see ``check_split``).
    """
    where = (manifest_fields.get("source") or {}).get("path") or out
    splits_info = dict(manifest_fields.get("splits_info", {}))
    cold: dict[int, str] = {}
    if cold_start is not None:
        splits, cold_info = add_cold_splits(where, splits, columns.users, columns.items, cold_start)
        splits_info.update(count=len(splits), cold_start=cold_info)
        cold = {k: entry["kind"] for k, entry in cold_info.items()}
    checked = checked_splits_info(
        where, splits, columns.users, columns.items, allow_unseen, allow_empty, cold=cold
    )
    manifest_fields["splits_info"] = {**splits_info, **checked}
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
    cold: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Check every split; the manifest's record of it: ``checked``, ``allow_unseen`` and, when records with
    unseen ids were kept, ``unseen`` (split -> part -> counts of records with an unseen user / item).
    ``cold`` names the cold-start splits' kinds (split -> "user" or "item"): their cold test ids may be unseen."""
    info: dict[str, Any] = {"checked": True, "allow_unseen": allow_unseen}
    unseen: dict[int, Any] = {}
    for k in sorted(splits):
        counts = check_split(
            where,
            k,
            splits[k],
            users,
            items,
            allow_unseen=allow_unseen,
            allow_empty=allow_empty,
            cold=(cold or {}).get(k),
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
