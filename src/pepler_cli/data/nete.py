"""The paper's datasets in NETE format: ``reviews.pickle`` plus five given splits.

Layout of a downloaded dataset folder ``DIR``::

    DIR/reviews.pickle               list of dicts: user, item, rating,
                                     template = (feature, adjective, sentence, sentiment); extras ignored
    DIR/1/train.index  validation.index  test.index
    ...
    DIR/5/...                        record numbers (0-based positions in the list), any whitespace between

The pickle is read with :mod:`pepler_cli.data.safe_pickle` (plain data only, never code), every record is
checked, and the five splits are kept exactly as given. :func:`export_nete` writes a prepared dataset back in
this layout, for the authors' code and other tools that read it.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pepler_cli.data.cold_start import ColdStartSpec
from pepler_cli.data.prepared.layout import SPLIT_PARTS, Split
from pepler_cli.data.prepared.reading import load_prepared, read_index_file
from pepler_cli.data.prepared.records import RecordColumns
from pepler_cli.data.prepared.writing import PrepareResult, Truncation, progress_task, truncate_and_write
from pepler_cli.data.safe_pickle import load_plain_pickle
from pepler_cli.data.stats import PAPER_DATASET_TITLES
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import atomic_directory, ensure_new_output, output_lock, sha256_file

NETE_DATASETS = tuple(PAPER_DATASET_TITLES)
REVIEWS_FILE = "reviews.pickle"
NETE_SPLIT_COUNT = 5
DATASETS_URL = "https://github.com/lileipisces/PEPLER"
LAYOUT = "DIR/reviews.pickle and DIR/1..5/{train,validation,test}.index"


def missing_source_message(dataset: str, problem: str) -> str:
    """One line: what is missing, where the paper's datasets are published, the layout, and the flag."""
    title = PAPER_DATASET_TITLES.get(dataset, dataset)
    return (
        f"{problem}. The {title} dataset is not bundled with pepler: download it from the link in the "
        f"README of the PEPLER authors' repository ({DATASETS_URL}, 'Datasets to download': TripAdvisor Hong "
        "Kong, Amazon Movies & TV, Yelp 2019; the NETE/PETER repositories of github.com/lileipisces use the "
        f"same files), unpack it, and pass its folder with --source DIR; DIR must hold {LAYOUT} "
        f"(e.g. pepler prepare {dataset} --source ~/datasets/{title.split()[0]})"
    )


def nete_source_files(source: Path) -> list[str]:
    """The files a NETE dataset folder must hold, relative to it."""
    return [REVIEWS_FILE] + [
        f"{k}/{part}.index" for k in range(1, NETE_SPLIT_COUNT + 1) for part in SPLIT_PARTS
    ]


def check_nete_source(dataset: str, source: Path | None) -> Path:
    """The source folder, or a UsageError (exit 2) explaining where to get the dataset and how to pass it."""
    if source is None:
        raise UsageError(missing_source_message(dataset, f"pepler prepare {dataset} needs --source DIR"))
    source = Path(source).expanduser()
    if not source.is_dir():
        raise UsageError(missing_source_message(dataset, f"--source {source}: no such directory"))
    missing = [name for name in nete_source_files(source) if not (source / name).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        shown = ", ".join(str(source / name) for name in missing[:3]) + more
        raise UsageError(missing_source_message(dataset, f"--source {source}: missing {shown}"))
    return source


# ------------------------------------------------------------------------------------------- the records


def read_nete_reviews(path: Path, progress: Any = None) -> RecordColumns:
    """Records of a NETE ``reviews.pickle``, checked field by field; texts are not truncated yet."""
    path = Path(path)
    try:
        size = path.stat().st_size
        handle = open(path, "rb")  # noqa: SIM115 (the with below closes it; only opening may fail here)
    except OSError as error:
        raise PeplerError(f"{path}: cannot read ({error.strerror or error})") from None
    advance = progress_task(progress, f"reading {path.name}", size)
    with handle:
        reviews = _with_file_progress(handle, advance, lambda: load_plain_pickle(path, handle))
    advance(size)
    if not isinstance(reviews, list):
        raise PeplerError(f"{path}: expected a list of review dicts, got {type(reviews).__name__}")
    columns = _columns_from_reviews(path, reviews, progress_task(progress, "checking records", len(reviews)))
    if len(columns) == 0:
        raise PeplerError(f"{path}: holds no reviews")
    _check_unicode(path, columns)
    return columns


def _with_file_progress(handle: Any, advance: Any, load: Any) -> Any:
    """Run ``load()`` while a thread reports how far into ``handle`` the reads have got."""
    done = threading.Event()

    def poll() -> None:
        fd = handle.fileno()
        while not done.wait(0.25):
            try:
                advance(os.lseek(fd, 0, os.SEEK_CUR))
            except OSError:
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        return load()
    finally:
        done.set()
        thread.join()


def _columns_from_reviews(path: Path, reviews: list, advance: Any) -> RecordColumns:
    n = len(reviews)
    users: list[str] = [""] * n
    items: list[str] = [""] * n
    ratings: list[float] = [0.0] * n
    texts: list[str] = [""] * n
    features: list[str] = [""] * n
    opinions: list[str | None] = [None] * n
    sentiments: list[int | None] = [None] * n
    str_, int_, float_, tuple_, list_ = str, int, float, tuple, list
    for number, review in enumerate(reviews):
        # The fast path: exact type checks only; anything unusual goes to _review_problem for the message.
        try:
            user = review["user"]
            item = review["item"]
            rating = review["rating"]
            feature, opinion, sentence, sentiment = review["template"]
        except (KeyError, TypeError, ValueError):
            raise PeplerError(_review_problem(path, number, review)) from None
        if type(user) is not str_:
            user = _entity(path, number, "user", user)
        if type(item) is not str_:
            item = _entity(path, number, "item", item)
        if (
            (type(rating) is not float_ and type(rating) is not int_)
            or type(feature) is not str_
            or type(opinion) is not str_
            or type(sentence) is not str_
            or (sentiment != 1 and sentiment != -1)
            or type(sentiment) not in (int_, float_)
            or type(review["template"]) not in (tuple_, list_)
        ):
            raise PeplerError(_review_problem(path, number, review))
        users[number] = user
        items[number] = item
        try:
            ratings[number] = float_(rating)
        except OverflowError:  # an integer beyond any float
            raise PeplerError(
                f"{path}: record {number}: field 'rating': expected a finite number, got a huge integer"
            ) from None
        texts[number] = sentence
        features[number] = feature
        opinions[number] = opinion
        sentiments[number] = int_(sentiment)
        if number % 100_000 == 0:
            advance(number)
    advance(n)
    if not all(map(math.isfinite, ratings)):
        number = next(i for i, rating in enumerate(ratings) if not math.isfinite(rating))
        raise PeplerError(
            f"{path}: record {number}: field 'rating': expected a finite number, got {ratings[number]}"
        )
    return RecordColumns(users, items, ratings, texts, features, opinions, sentiments)


def _entity(path: Path, number: int, key: str, value: Any) -> str:
    # Some copies store ids as integers; they are names either way.
    if type(value) is int:
        try:
            return str(value)
        except ValueError:  # more than 4300 digits
            pass
    raise PeplerError(f"{path}: record {number}: field '{key}': expected a string, got {_describe(value)}")


def _describe(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # it holds an integer of more than 4300 digits
        text = "(too long to show)"
    except RecursionError:
        text = "(nested too deeply to show)"
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def _check_unicode(path: Path, columns: RecordColumns) -> None:
    """Name the first string that is not Unicode text (a lone surrogate, which a pickle can hold): the
    tokenizer and every file written later would fail on it. Big chunks are encoded at once (fast); only a
    failing chunk is searched."""
    for field, values in (
        ("'user'", columns.users),
        ("'item'", columns.items),
        ("'template[0]' (feature)", columns.features),
        ("'template[1]' (adjective)", columns.opinions or []),
        ("'template[2]' (sentence)", columns.texts),
    ):
        for start in range(0, len(values), 100_000):
            chunk = values[start : start + 100_000]
            try:
                "".join(value or "" for value in chunk).encode("utf-8")
                continue
            except UnicodeEncodeError:
                pass
            for number, value in enumerate(chunk, start=start):
                try:
                    (value or "").encode("utf-8")
                except UnicodeEncodeError as error:
                    bad = value[error.start]
                    raise PeplerError(
                        f"{path}: record {number}: field {field}: holds the lone surrogate {bad!r} at "
                        f"character {error.start}, which is not Unicode text"
                    ) from None


_TEMPLATE_PARTS = (("feature", 0), ("adjective", 1), ("sentence", 2))


def _review_problem(path: Path, number: int, review: Any) -> str:
    """The one-line message for a bad record (the slow path: runs only on a failure)."""
    where = f"{path}: record {number}"
    if not isinstance(review, dict):
        return f"{where}: expected a dict with keys user, item, rating, template; got {_describe(review)}"
    for key in ("user", "item", "rating", "template"):
        if key not in review:
            return f"{where}: field '{key}' is missing"
    for key in ("user", "item"):
        value = review[key]
        if not isinstance(value, str) and type(value) is not int:
            return f"{where}: field '{key}': expected a string, got {_describe(value)}"
    rating = review["rating"]
    if type(rating) not in (int, float):
        return f"{where}: field 'rating': expected a number, got {_describe(rating)}"
    template = review["template"]
    if type(template) not in (tuple, list) or len(template) != 4:
        return (
            f"{where}: field 'template': expected a 4-tuple (feature, adjective, sentence, sentiment), "
            f"got {_describe(template)}"
        )
    for label, position in _TEMPLATE_PARTS:
        if type(template[position]) is not str:
            got = _describe(template[position])
            return f"{where}: field 'template[{position}]' ({label}): expected a string, got {got}"
    return f"{where}: field 'template[3]' (sentiment): expected 1 or -1, got {_describe(template[3])}"


# -------------------------------------------------------------------------------------------- the splits


def read_nete_splits(source: Path, n_records: int) -> dict[int, Split]:
    """The five given splits, exactly as they are (order kept); every number must name a record."""
    splits: dict[int, Split] = {}
    for k in range(1, NETE_SPLIT_COUNT + 1):
        parts = tuple(read_index_file(source / str(k) / f"{part}.index", n_records) for part in SPLIT_PARTS)
        splits[k] = parts  # type: ignore[assignment]
    return splits


def _split_ratios(split: Split) -> list[float]:
    total = sum(len(part) for part in split) or 1
    return [round(len(part) / total, 4) for part in split]


# ---------------------------------------------------------------------------------------------- prepare


def prepare_nete(
    dataset: str,
    source: Path | None,
    out: Path,
    *,
    truncation: Truncation,
    name: str | None = None,
    overwrite: bool = False,
    config: Mapping[str, Any] | None = None,
    progress: Any = None,
    allow_unseen: bool = False,
    cold_start: ColdStartSpec | None = None,
) -> PrepareResult:
    """Prepare one of the paper's datasets from its NETE folder ``source`` into ``out``; explanations are cut
    as ``truncation`` says. The given splits are checked (no record in two parts, no empty part, and, unless
    ``allow_unseen``, no validation/test record whose user or item training never holds); ``cold_start`` adds
    the two cold-start splits after them."""
    if dataset not in NETE_DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; the paper's datasets are {', '.join(NETE_DATASETS)}")
    source = check_nete_source(dataset, source)
    ensure_new_output(Path(out), overwrite)
    columns = read_nete_reviews(source / REVIEWS_FILE, progress)
    splits = read_nete_splits(source, len(columns))
    source_hashes = {relative: sha256_file(source / relative) for relative in nete_source_files(source)}
    manifest_fields = {
        "name": name or dataset,
        "source": {
            "kind": "nete",
            "dataset": dataset,
            "path": str(source.resolve()),
            "sha256": source_hashes,
        },
        "splits_info": {
            "count": NETE_SPLIT_COUNT,
            "method": f"given: the NETE dataset's own splits {source}/1..{NETE_SPLIT_COUNT}, kept as is",
            "seed": None,
            "ratios": _split_ratios(splits[1]),
        },
        "extra_counts": {"reviews_read": len(columns), "reviews_dropped": 0},
        "config": config,
        "overwrite": overwrite,
    }
    return truncate_and_write(
        Path(out),
        columns,
        splits,
        truncation,
        progress,
        allow_unseen=allow_unseen,
        cold_start=cold_start,
        **manifest_fields,
    )


# ----------------------------------------------------------------------------------------------- export


def export_nete(data: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the prepared dataset ``data`` in the layout the authors' PEPLER, PETER and NETE code reads (and ``prepare`` reads back):
    ``reviews.pickle``, a list of plain dicts (user, item, rating, template=(feature, opinion, sentence,
    sentiment)), and ``1..k/{train,validation,test}.index``. Plain data only: pepler's restricted unpickler loads
    it."""
    ensure_new_output(Path(out), overwrite)
    with output_lock(Path(out)):
        return _export_nete_locked(data, out, overwrite)


def _export_nete_locked(data: Path, out: Path, overwrite: bool = False) -> Path:
    dataset = load_prepared(data)
    reviews = []
    for number, record in enumerate(dataset.records):
        if record.opinion is None or record.sentiment is None:
            raise PeplerError(
                f"{dataset.path}: record {number}: NETE needs an opinion and a sentiment for every explanation, "
                "and this one has none"
            )
        template = (record.feature, record.opinion, record.text, record.sentiment)
        reviews.append(
            {"user": record.user, "item": record.item, "rating": record.rating, "template": template}
        )
    with atomic_directory(Path(out), overwrite=overwrite) as directory:
        (directory / REVIEWS_FILE).write_bytes(pickle.dumps(reviews, protocol=4))
        for k, parts in sorted(dataset.splits.items()):
            (directory / str(k)).mkdir()
            for part, numbers in zip(SPLIT_PARTS, parts):
                (directory / str(k) / f"{part}.index").write_text(" ".join(map(str, numbers)) + "\n")
    return Path(out)
