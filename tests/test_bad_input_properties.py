"""Damaged and random user files through the command line: success, or one clear error line and no output.

Every reader of a file a person hands to pepler — a NETE ``reviews.pickle`` and its split index files, raw
reviews (JSON lines, CSV, gzipped or not), ``preds.jsonl`` and its meta sidecar, a ``--config`` file, a prepared
dataset's manifest, a run's manifest — is fed a valid file with one thing changed (a field deleted, a value of
another type, NaN, a huge number, an empty or lone-surrogate string, a record that is not a record) or with
byte-level damage (cut short, a bit flipped, bytes inserted, deleted or overwritten, non-UTF-8 bytes). Whatever
the input, the command must end either in success or in exactly one ``error:`` line that names the file (and,
where there is one, the line or record and the field), a non-zero exit, no traceback, and no half-written
output.

Examples are derandomized, so CI sees the same inputs every time.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import math
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.cli.common import one_line
from pepler_cli.files import sha256_file
from pepler_cli.predictions import Prediction, write_meta, write_predictions

FIXTURES = Path(__file__).parent / "fixtures"
NETE = FIXTURES / "nete-tiny"
NETE_PICKLE = (NETE / "reviews.pickle").read_bytes()
NETE_REVIEWS: list[dict[str, Any]] = pickle.loads(NETE_PICKLE)  # our own fixture: plain data
SAMPLE = FIXTURES / "amazon-musical-instruments-sample.jsonl"
SAMPLE_ROWS = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
RAW_FIELDS = ("reviewerID", "asin", "overall", "reviewText")
SPLIT_PARTS = ("train", "validation", "test")

runner = CliRunner()


def property_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


pytestmark = pytest.mark.usefixtures("tokenizer_loaded_once")


# --------------------------------------------------------------------------------------------- outcomes


def invoke(*args: Any):
    return runner.invoke(app, [str(arg) for arg in args])


def error_line(result, *fragments: str) -> str:
    """The one ``error:`` line of a failed command; asserts it is the only one, printed last, no traceback."""
    assert result.exit_code != 0, result.output
    # An exception other than SystemExit escaped the command: a traceback for the user.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(lines[0]), result.stderr  # nothing printed after it
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_no_output(out: Path) -> None:
    """Neither the output nor a temporary sibling of it is left."""
    assert not out.exists(), sorted(p.name for p in out.iterdir()) if out.is_dir() else out
    if out.parent.is_dir():
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
        assert leftovers == []


ODD_BYTES = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r", b"\n", b"\x80\x80", b"\xef\xbb\xbf")


@dataclass(frozen=True)
class Damage:
    """One kind of damage to a file: cut short, a bit flipped, or ``chunk`` inserted, deleted or written over,
    at ``where`` (0 to 1) of its length."""

    kind: str
    where: float
    bit: int = 0
    chunk: bytes = b"\xff"

    def __call__(self, data: bytes) -> bytes:
        at = int(self.where * len(data))
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "flip":
            flipped = bytearray(data)
            flipped[min(at, len(data) - 1)] ^= 1 << self.bit
            return bytes(flipped)
        if self.kind == "insert":
            return data[:at] + self.chunk + data[at:]
        if self.kind == "delete":
            return data[:at] + data[at + len(self.chunk) :]
        return data[:at] + self.chunk + data[at + len(self.chunk) :]


DAMAGE = st.builds(
    Damage,
    kind=st.sampled_from(("truncate", "flip", "insert", "delete", "overwrite")),
    where=st.floats(0, 1),
    bit=st.integers(0, 7),
    chunk=st.one_of(st.sampled_from(ODD_BYTES), st.binary(min_size=1, max_size=8)),
)


def damaged(data: bytes) -> st.SearchStrategy[bytes]:
    return DAMAGE.map(lambda damage: damage(data))


HUGE = (10**400, -(10**400), 10**5000, 2**64)


def beyond_digits(value: Any) -> bool:
    """An integer of more than 4300 digits, which Python refuses to read from text."""
    return isinstance(value, int) and abs(value) >= 10**4300


ODD_TEXT = ("", " ", "\ud800", "caf\udce9", ":cat:", "[bold]x", "a\nb", "\x00")

# Values of the wrong type, or of the right type with odd contents.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 7),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(ODD_TEXT),
    st.lists(st.integers(-2, 2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
)


@contextmanager
def scratch() -> Iterator[Path]:
    """A new empty directory, also the working directory (relative paths in damaged files land in it).

    Not tmp_path: a function-scoped fixture would be shared by every example of a property.
    """
    with tempfile.TemporaryDirectory(prefix="pepler-bad-input-") as directory:
        previous = os.getcwd()
        os.chdir(directory)
        try:
            yield Path(directory)
        finally:
            os.chdir(previous)


@contextmanager
def no_digit_limit() -> Iterator[None]:
    """Let json and yaml write ints of more than 4300 digits, which Python refuses to turn into text."""
    get, set_ = getattr(sys, "get_int_max_str_digits", None), getattr(sys, "set_int_max_str_digits", None)
    if get is None or set_ is None:
        yield
        return
    old = get()
    set_(0)
    try:
        yield
    finally:
        set_(old)


# ------------------------------------------------------------------------------------ NETE reviews.pickle


def nete_source(root: Path, reviews: bytes | None = None) -> Path:
    source = Path(shutil.copytree(NETE, root / "TripAdvisor"))
    if reviews is not None:
        (source / "reviews.pickle").write_bytes(reviews)
    return source


def prepare_nete(source: Path, out: Path) -> tuple[Any, str | None]:
    """Run `prepare tripadvisor`; None on success (the output complete), else the error line (no output)."""
    result = invoke("prepare", "tripadvisor", "--source", source, "--out", out)
    if result.exit_code == 0:
        assert (out / "manifest.yaml").is_file() and (out / "records.jsonl").is_file()
        return result, None
    line = error_line(result, str(source))
    assert_no_output(out)
    return result, line


@property_settings(30)
@given(data=damaged(NETE_PICKLE))
def test_damaged_reviews_pickle(data: bytes) -> None:
    with scratch() as root:
        source = nete_source(root, data)
        _, line = prepare_nete(source, root / "out" / "ta")
        if line is not None:
            # Damage may still unpickle, into fewer or other records: then an index file or a split is at fault.
            assert any(
                part in line for part in (str(source / "reviews.pickle"), ".index: entry", ": split ")
            ), line


TOP_FIELDS = ("user", "item", "rating", "template")


@st.composite
def bad_reviews(draw: st.DrawFn) -> tuple[bytes, int | None, str | None]:
    """A pickled review list with one record changed; the record's number and the field changed (or None)."""
    reviews = copy.deepcopy(NETE_REVIEWS)
    number = draw(st.integers(0, len(reviews) - 1))
    review = reviews[number]
    how = draw(st.sampled_from(("delete", "retype", "template part", "template length", "record", "list")))
    field: str | None = draw(st.sampled_from(TOP_FIELDS))
    if how == "delete":
        del review[field]
    elif how == "retype":
        review[field] = draw(JUNK)
    elif how == "template part":
        template = list(review["template"])
        template[draw(st.integers(0, 3))] = draw(JUNK)
        review["template"], field = tuple(template), "template"
    elif how == "template length":
        size = draw(st.sampled_from((0, 1, 3, 5)))
        review["template"], field = (tuple(review["template"]) * 2)[:size], "template"
    elif how == "record":
        reviews[number], field = draw(JUNK), None
    else:
        reviews, number, field = draw(JUNK), None, None
    return pickle.dumps(reviews, protocol=draw(st.integers(2, pickle.HIGHEST_PROTOCOL))), number, field


def reviews_with(number: int, field: str, value: Any) -> tuple[bytes, int, str]:
    """The fixture's reviews with one field of record ``number`` changed, pickled."""
    reviews = copy.deepcopy(NETE_REVIEWS)
    reviews[number][field] = value
    return pickle.dumps(reviews, protocol=4), number, field


def template_with(number: int, part: int, value: Any) -> tuple[bytes, int, str]:
    template = list(NETE_REVIEWS[number]["template"])
    template[part] = value
    return reviews_with(number, "template", tuple(template))


@property_settings(40)
@given(case=bad_reviews())
# Each was a traceback: OverflowError, ValueError (str of 5000 digits), ValueError in the message's repr; a
# lone surrogate crashed the tokenizer.
@example(case=reviews_with(7, "rating", 10**400))
@example(case=reviews_with(3, "user", 10**5000))
@example(case=template_with(5, 0, 10**5000))
@example(case=template_with(9, 2, "the room was \udc80 clean"))
@example(case=reviews_with(2, "item", "\ud800"))
def test_reviews_with_a_bad_record(case: tuple[bytes, int | None, str | None]) -> None:
    data, number, field = case
    with scratch() as root:
        source = nete_source(root, data)
        _, line = prepare_nete(source, root / "out" / "ta")
        if line is None or "refused to unpickle" in line:  # protocols < 4 pickle bytes and sets by a global
            return
        assert str(source / "reviews.pickle") in line
        if number is not None:
            assert f"record {number}:" in line, line
        if field is not None:
            assert f"field '{field}" in line, line


def test_deeply_nested_record_is_one_line(tmp_path: Path) -> None:
    # [[[[...]]]] 100,000 lists deep, built by the opcodes themselves: EMPTY_LIST and APPEND.
    depth = 100_000
    data = b"\x80\x02]" + b"]" * depth + b"a" * depth + b"."
    source = nete_source(tmp_path, data)
    _, line = prepare_nete(source, tmp_path / "out")
    assert line is not None and "record 0:" in line


@pytest.mark.parametrize("how", ["chmod", "injected"])
@pytest.mark.parametrize("relative", ["reviews.pickle", "3/validation.index"])
def test_unreadable_source_file(tmp_path: Path, relative: str, how: str, refusals) -> None:
    """chmod 0 for real (which cannot stop root), and the same refusal injected at the read (runs as root)."""
    source = nete_source(tmp_path)
    if how == "chmod":
        (source / relative).chmod(0)
        try:
            if os.access(source / relative, os.R_OK):
                pytest.skip(
                    "chmod cannot stop this user (root): an unreadable file is readable; run as another "
                    "user for the real thing (the 'injected' variant checks the same refusal as root)"
                )
            _, line = prepare_nete(source, tmp_path / "out")
        finally:
            (source / relative).chmod(0o644)
    else:
        refusals.unreadable_file(source / relative)  # EACCES where the kernel would say it, for root too
        _, line = prepare_nete(source, tmp_path / "out")
        assert refusals.refused, f"{relative} was never opened"
    # prepare_nete checked the rest: one error line naming the source, no traceback, no output left.
    assert line is not None and f"{source / relative}: cannot read (Permission denied)" in line, line


# --------------------------------------------------------------------------------- NETE split index files

INDEX_TOKENS = st.one_of(
    st.integers(-3, 70).map(str),
    st.sampled_from(("x", "1.5", "1e3", "0x1f", "+3", "-0", "٣", "1_0", "9" * 5000, ":cat:", "[b]", "\x00")),
    st.text(max_size=4),
)


def index_problem(data: bytes, records: int) -> str | None:
    """The error an index file should give (what its reader is specified to say), None when it is fine."""
    try:
        tokens = data.decode("utf-8").split()
    except UnicodeDecodeError:
        return "not a text file of record numbers"
    numbers = []
    for position, token in enumerate(tokens, start=1):
        try:
            numbers.append(int(token))
        except ValueError:
            return f"entry {position} is {token!r}, not a record number"
    for position, value in enumerate(numbers, start=1):
        if not 0 <= value < records:
            return f"entry {position} is record {value}, outside 0..{records - 1}"
    return None


@st.composite
def bad_index(draw: st.DrawFn) -> tuple[str, bytes]:
    relative = f"{draw(st.integers(1, 5))}/{draw(st.sampled_from(SPLIT_PARTS))}.index"
    if draw(st.booleans()):
        return relative, draw(damaged((NETE / relative).read_bytes()))
    tokens = draw(st.lists(INDEX_TOKENS, max_size=6))
    separator = draw(st.sampled_from((" ", "\n", "\t", " \r\n")))
    return relative, separator.join(tokens).encode("utf-8")


@property_settings(30)
@given(case=bad_index())
@example(case=("1/test.index", b"3 :cat: 4"))  # was printed as an emoji
def test_bad_index_file(case: tuple[str, bytes]) -> None:
    relative, data = case
    with scratch() as root:
        source = nete_source(root)
        (source / relative).write_bytes(data)
        _, line = prepare_nete(source, root / "out" / "ta")
        expected = index_problem(data, len(NETE_REVIEWS))
        if expected is None:
            # Readable numbers; the split checks may still refuse the split (an empty part, a shared record).
            assert line is None or f"{source}: split {relative.split('/')[0]}: " in line, line
        else:
            assert line is not None and f"{source / relative}: {expected}" in line, (expected, line)


# ------------------------------------------------------------------------------------------- raw reviews

RAW_NAMES = ("reviews.jsonl", "reviews.json.gz", "reviews.csv", "reviews.csv.gz")
RAW_ROWS = [{name: row[name] for name in RAW_FIELDS} for row in SAMPLE_ROWS]
# Whole lines that are not a review: a 5000-digit number, JSON nested 100,000 deep, a number too big for a
# float, a BOM, cut-off JSON.
ODD_LINES = (
    "1" * 5000,
    "[" * 100_000,
    '{"reviewerID": "a", "asin": "b", "overall": 1' + "0" * 400 + ', "reviewText": "x"}',
    '{"reviewerID": ' + "1" * 5000 + "}",
    "\ufeff{}",
    "null",
    "[]",
    '"text"',
    "{",
    "NaN",
)


def encode_raw(name: str, rows: list[Any], lines: dict[int, str] | None = None) -> bytes:
    """Rows as the file ``name`` holds them; ``lines`` replaces some lines by raw text (JSON only)."""
    if ".csv" in name:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(RAW_FIELDS)
        writer.writerows([[row[key] for key in RAW_FIELDS if key in row] for row in rows])
        text = buffer.getvalue()
    else:
        with no_digit_limit():
            encoded = [json.dumps(row) for row in rows]
        for number, line in (lines or {}).items():
            encoded[number] = line
        text = "".join(line + "\n" for line in encoded)
    data = text.encode("utf-8", errors="surrogatepass")
    return gzip.compress(data, mtime=0) if name.endswith(".gz") else data


CSV_JUNK = st.one_of(
    st.sampled_from(
        ("", " ", "nan", "inf", "-inf", "1e400", "1" * 400, "five", "\x00", "ça", "[x]", ":cat:")
    ),
    st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=8),
)


@st.composite
def bad_raw(draw: st.DrawFn) -> tuple[str, bytes, int, str | None]:
    """A raw reviews file with one review changed: its name, bytes, the line number and field changed."""
    name = draw(st.sampled_from(RAW_NAMES))
    rows: list[Any] = copy.deepcopy(RAW_ROWS)
    number = draw(st.integers(0, len(rows) - 1))
    field: str | None = draw(st.sampled_from(RAW_FIELDS))
    is_csv = ".csv" in name
    how = draw(st.sampled_from(("delete", "retype", "line") if not is_csv else ("delete", "retype")))
    lines = {}
    if how == "delete":
        if is_csv:  # a short row: the cells of the later columns are missing
            keep = RAW_FIELDS.index(field)
            rows[number] = {key: rows[number][key] for key in RAW_FIELDS[:keep]}
        else:
            del rows[number][field]
    elif how == "retype":
        rows[number][field] = draw(CSV_JUNK if is_csv else JUNK)
    else:
        lines[number], field = draw(st.sampled_from(ODD_LINES)), None
    line_number = number + 2 if is_csv else number + 1  # a CSV file's first line is its header
    return name, encode_raw(name, rows, lines), line_number, field


def prepare_raw(path: Path, out: Path) -> str | None:
    result = invoke("prepare", path, "--name", "raw", "--out", out)
    if result.exit_code == 0:
        assert (out / "manifest.yaml").is_file() and (out / "records.jsonl").is_file()
        return None
    line = error_line(result, str(path))
    assert_no_output(out)
    return line


def raw_with(name: str, number: int, field: str | None, value: Any = None, line: str = "") -> tuple:
    """The sample as raw reviews ``name`` with review ``number``'s ``field`` set (or its line replaced)."""
    rows = copy.deepcopy(RAW_ROWS)
    if field is not None:
        rows[number][field] = value
    data = encode_raw(name, rows, {number: line} if line else None)
    return name, data, number + (2 if ".csv" in name else 1), field


@property_settings(40)
@given(case=bad_raw())
# Each was a traceback: OverflowError, RecursionError, a tokenizer's crash on a lone surrogate.
@example(case=raw_with("reviews.jsonl", 4, "overall", 10**400))
@example(case=raw_with("reviews.json.gz", 2, None, line="[" * 100_000))
@example(case=raw_with("reviews.jsonl", 6, "reviewText", "great strings \ud800 here"))
@example(case=raw_with("reviews.jsonl", 8, "reviewerID", "A\udfff"))
def test_raw_reviews_with_a_bad_review(case: tuple[str, bytes, int, str | None]) -> None:
    name, data, line_number, field = case
    with scratch() as root:
        path = root / name
        path.write_bytes(data)
        line = prepare_raw(path, root / "out")
        if (
            line is not None and f"{path}: split " not in line
        ):  # the split checks may refuse 40 reviews' splits
            assert f"{path}: line {line_number}:" in line, line
            if field is not None and "not valid JSON" not in line:  # a 5000-digit number is no JSON
                assert repr(field) in line, line


@property_settings(30)
@given(name=st.sampled_from(RAW_NAMES), data=st.data())
def test_damaged_raw_reviews(name: str, data: st.DataObject) -> None:
    damage = data.draw(damaged(encode_raw(name, RAW_ROWS)))
    with scratch() as root:
        path = root / name
        path.write_bytes(damage)
        prepare_raw(path, root / "out")


def test_corrupt_gzip_is_one_line(tmp_path: Path) -> None:
    """Damage inside the compressed data: zlib's own error, once a traceback."""
    data = bytearray(encode_raw("reviews.jsonl.gz", RAW_ROWS))
    data[10] |= 0b110  # the first deflate block's type: 3 is reserved, "invalid block type"
    path = tmp_path / "reviews.jsonl.gz"
    path.write_bytes(bytes(data))
    line = prepare_raw(path, tmp_path / "out")
    assert line is not None and "cannot be read" in line


def test_csv_header_longer_than_the_field_limit(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("x" * 200_000 + ",asin\n", encoding="utf-8")
    assert prepare_raw(path, tmp_path / "out") is not None


# -------------------------------------------------------------------------------- preds.jsonl and sidecar

PREDICTIONS = [
    Prediction("u1", "i1", "the room was clean", "the room is clean", "room", 5.0, 4.6),
    Prediction("u2", "i2", "the staff is friendly", "the room is clean", "staff", 3.0, 3.5),
    Prediction("u3", "i3", "great location", "friendly staff , great location", "location", 2.0, 0.2),
    Prediction("u4", "i4", "the breakfast was cold", "breakfast was cold", "breakfast", 1.0, 1.9),
]
PREDICTION_FIELDS = ("user", "item", "reference", "generated", "feature", "rating", "predicted_rating")


def write_features(root: Path) -> Path:
    path = root / "features.txt"
    path.write_text("breakfast\nlocation\nroom\nstaff\n", encoding="utf-8")
    return path


def score(predictions: Path, features: Path) -> tuple[Any, str | None]:
    """Run `score`; None on success (the scores file written), else the error line (no scores file)."""
    scores = predictions.with_name("preds.scores.yaml")
    result = invoke("score", predictions, "--features", features)
    if result.exit_code == 0:
        assert isinstance(yaml.safe_load(scores.read_text(encoding="utf-8"))["scores"], dict)
        return result, None
    line = error_line(result, str(predictions))
    assert_no_output(scores)
    return result, line


@st.composite
def bad_predictions(draw: st.DrawFn) -> tuple[bytes, int, str | None]:
    lines = [prediction.to_json() for prediction in PREDICTIONS]
    number = draw(st.integers(0, len(lines) - 1))
    field: str | None = draw(st.sampled_from(PREDICTION_FIELDS))
    how = draw(st.sampled_from(("delete", "retype", "line")))
    text = [json.dumps(line, ensure_ascii=False) for line in lines]
    if how == "delete":
        del lines[number][field]
    elif how == "retype":
        lines[number][field] = draw(JUNK)
    if how != "line":
        with no_digit_limit():
            text[number] = json.dumps(lines[number], ensure_ascii=False)
    else:
        text[number], field = draw(st.sampled_from(ODD_LINES)), None
    data = "".join(line + "\n" for line in text).encode("utf-8", errors="surrogatepass")
    return data, number + 1, field


def predictions_with(number: int, line: str, field: str | None = None) -> tuple[bytes, int, str | None]:
    """The predictions with line ``number`` (0-based) replaced by ``line``; ``field`` is the one it spoils."""
    lines = [json.dumps(prediction.to_json()) for prediction in PREDICTIONS]
    lines[number] = line
    return "".join(line + "\n" for line in lines).encode("utf-8"), number + 1, field


@property_settings(40)
@given(case=bad_predictions())
# Each was a traceback: OverflowError, ValueError (not a JSONDecodeError), RecursionError.
@example(case=predictions_with(1, json.dumps({**PREDICTIONS[1].to_json(), "rating": 10**400}), "rating"))
@example(case=predictions_with(2, '{"user": ' + "1" * 5000 + "}"))
@example(case=predictions_with(0, "[" * 100_000))
def test_predictions_with_a_bad_line(case: tuple[bytes, int, str | None]) -> None:
    data, line_number, field = case
    with scratch() as root:
        predictions = root / "preds.jsonl"
        predictions.write_bytes(data)
        _, line = score(predictions, write_features(root))
        if line is not None:
            assert f"{predictions}: line {line_number}:" in line or "not UTF-8" in line, line
            if field is not None and "not UTF-8" not in line and "not valid JSON" not in line:
                assert f"'{field}'" in line, line


@property_settings(30)
@given(data=st.data())
def test_damaged_predictions(data: st.DataObject) -> None:
    with scratch() as root:
        predictions = root / "preds.jsonl"
        write_predictions(predictions, PREDICTIONS)
        predictions.write_bytes(data.draw(damaged(predictions.read_bytes())))
        score(predictions, write_features(root))


RUN_MANIFEST = {"format": "pepler-run/1", "name": "hotels-1", "config": {"backbone": "gpt2-tiny"}}
META_KEYS = (
    ("format",),
    ("run",),
    ("run", "path"),
    ("run", "name"),
    ("config",),
    ("config", "decoding"),
    ("config", "beams"),
    ("config", "top_p"),
    ("config", "temperature"),
    ("dataset",),
    ("dataset", "split_number"),
    ("dataset", "split"),
    ("predictions",),
    ("predictions", "sha256"),
    ("created",),
)


def change(document: dict[str, Any], key: tuple[str, ...], value: Any, delete: bool) -> None:
    """Delete or set ``document[key[0]][key[1]]...``; an intermediate value that is no mapping is replaced."""
    for part in key[:-1]:
        if not isinstance(document.get(part), dict):
            document[part] = {}
        document = document[part]
    if delete:
        document.pop(key[-1], None)
    else:
        document[key[-1]] = value


def yaml_bytes(document: Any) -> bytes:
    # A lone surrogate is written as a \ud800 escape, which reads back as the lone surrogate.
    with no_digit_limit():
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")


YAML_JUNK = st.one_of(
    JUNK,
    st.sampled_from(("greedy", "beam", "top-k", "top-p", "sideways", "../..", "/", ".")),
    st.lists(st.text(max_size=3), max_size=2),
)


@st.composite
def bad_meta(draw: st.DrawFn) -> tuple[tuple[str, ...], Any, bool] | Damage:
    if draw(st.integers(0, 3)) == 0:
        return draw(DAMAGE)  # to the bytes of the real sidecar
    return draw(st.sampled_from(META_KEYS)), draw(YAML_JUNK), draw(st.booleans())


@property_settings(40)
@given(case=bad_meta())
@example(case=(("dataset", "split_number"), 10**5000, False))  # was a traceback: no YAML int of 5000 digits
@example(case=(("config",), "[" * 10_000, False))
def test_bad_meta_sidecar_is_at_most_a_note(case: Any) -> None:
    """The sidecar only links scores to a run: whatever it holds, scoring succeeds, at most with a note, and
    the run's manifest is either left alone or gains the scores and stays valid YAML."""
    with scratch() as root:
        run = root / "runs" / "hotels-1"
        run.mkdir(parents=True)
        (run / "manifest.yaml").write_text(yaml.safe_dump(RUN_MANIFEST), encoding="utf-8")
        predictions = root / "preds.jsonl"
        write_predictions(predictions, PREDICTIONS)
        provenance = {
            "config": {"decoding": "beam", "beams": 4, "length_penalty": 0.0},
            "run": {"path": str(run), "name": "hotels-1", "prompt": "continuous"},
            "dataset": {"path": "data/hotels", "split_number": 1, "split": "test"},
            "predictions": {"path": str(predictions), "count": 4, "sha256": sha256_file(predictions)},
        }
        write_meta(predictions, provenance)
        sidecar = root / "preds.meta.yaml"
        if isinstance(case, Damage):
            sidecar.write_bytes(case(sidecar.read_bytes()))
        else:
            key, value, delete = case
            meta = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
            change(meta, key, value, delete)
            sidecar.write_bytes(yaml_bytes(meta))
        result, line = score(predictions, write_features(root))
        assert line is None, line
        manifest = yaml.safe_load((run / "manifest.yaml").read_text(encoding="utf-8"))
        assert {k: v for k, v in manifest.items() if k != "scores"} == RUN_MANIFEST
        if "scores" in manifest:
            assert "recorded the scores" in result.stderr
            assert all(isinstance(entry["bleu_1"], float) for entry in manifest["scores"].values())


# -------------------------------------------------------------------------------------- --config files

TRAIN_KEYS = (
    "data",
    "out",
    "split",
    "prompt",
    "strategy",
    "backbone",
    "rating_head",
    "rating-weight",
    "learning_rate",
    "batch-size",
    "epochs",
    "seed",
    "lora_targets",
    "lora-rank",
    "device",
    "overwrite",
    "resume",
    "sead",
    "",
)


@st.composite
def bad_options(draw: st.DrawFn) -> bytes:
    options: dict[Any, Any] = {"data": "no-such-data", "out": "runs/r", "epochs": 1}
    if draw(st.integers(0, 3)) == 0:
        return draw(damaged(yaml_bytes(options)))
    for _ in range(draw(st.integers(1, 3))):
        options[draw(st.sampled_from(TRAIN_KEYS))] = draw(YAML_JUNK)
    if draw(st.booleans()):
        return yaml_bytes(draw(st.sampled_from((options, [options], "text", None, 5))))
    return yaml_bytes(options)


@property_settings(30)
@given(data=bad_options())
@example(data=b"data: d\nout: r\nseed: " + b"1" * 5000 + b"\n")  # was a traceback (ValueError)
@example(data=b"data: d\nout: r\nlora_targets: " + b"[" * 10_000)  # was a traceback (RecursionError)
@example(data=b"data: d\nout: r\nprompt: discrete\nrating_head: mf\n")  # did not name the file
def test_bad_config_file(data: bytes) -> None:
    """Options that cannot be read or are invalid name the config file; valid ones get as far as the output
    check or the data directory, which does not exist, and that error names it. Nothing is written."""
    with scratch() as cwd:
        config = cwd / "options.yaml"
        config.write_bytes(data)
        result = invoke("train", "--config", config)
        line = error_line(result)
        named = [str(config)]
        try:
            options = yaml.safe_load(data)
        except (yaml.YAMLError, ValueError, RecursionError):  # damaged beyond YAML: the config's error
            options = None
        if isinstance(options, dict):
            named += [
                one_line(str(Path(options[key])))
                for key in ("data", "out")
                if isinstance(options.get(key), str)
            ]
        assert any(name in line for name in named), (named, line)
        # No file but the options (an empty folder for --out's parent may be made for its lock).
        assert [str(p.relative_to(cwd)) for p in cwd.rglob("*") if not p.is_dir()] == ["options.yaml"]


def test_a_seed_beyond_what_torch_takes(nete_tiny_data: Path, tmp_path: Path) -> None:
    """Valid options otherwise: the seed is refused with the options, not by torch once training starts."""
    config = tmp_path / "options.yaml"
    config.write_text(f"data: {nete_tiny_data}\nout: {tmp_path / 'run'}\nseed: {2**64}\n", encoding="utf-8")
    result = invoke(
        "train", "--config", config, "--backbone", "gpt2-tiny", "--epochs", "1", "--device", "cpu"
    )
    error_line(result, f"{config}: option seed (--seed)")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------- prepared datasets

DATASET_KEYS = (
    ("format",),
    ("name",),
    ("counts",),
    ("counts", "records"),
    ("splits",),
    ("splits", "count"),
    ("files",),
    ("files", "records.jsonl"),
    ("files", "splits/3/test.index"),
    ("fingerprint",),
    ("rating_range",),
    ("statistics",),
)
SPLITS_COUNTS = st.sampled_from((0, 1, 4, 6, 10**30, 2**64))


DATA_FILES = ("manifest.yaml", "records.jsonl", "features.txt", "splits/2/train.index")


@st.composite
def bad_dataset_manifest(draw: st.DrawFn) -> tuple[tuple[str, ...], Any, bool] | tuple[str, Damage]:
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(DATA_FILES)), draw(DAMAGE)
    key = draw(st.sampled_from(DATASET_KEYS))
    value = draw(SPLITS_COUNTS if key == ("splits", "count") and draw(st.booleans()) else YAML_JUNK)
    return key, value, draw(st.booleans())


@property_settings(40)
@given(case=bad_dataset_manifest())
@example(case=(("counts",), 5, False))  # was a traceback (AttributeError)
@example(case=(("counts", "records"), "60", False))  # was "says 60, but records.jsonl holds 60"
@example(case=(("splits", "count"), 10**30, False))  # was a traceback (OverflowError), a smaller one a hang
@example(case=(("name",), 10**5000, False))  # was a traceback: no YAML int of 5000 digits
def test_bad_prepared_dataset(nete_tiny_data: Path, case: Any) -> None:
    """`export-data` reads a whole prepared dataset: a damaged file or manifest field is one line naming it."""
    with scratch() as root:
        dataset = Path(shutil.copytree(nete_tiny_data, root / "data"))
        manifest_path = dataset / "manifest.yaml"
        if isinstance(case[1], Damage):
            target = dataset / case[0]
            target.write_bytes(case[1](target.read_bytes()))
            key: tuple[str, ...] = ()
        else:
            key, value, delete = case
            manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
            change(manifest, key, value, delete)
            manifest_path.write_bytes(yaml_bytes(manifest))
        out = root / "exported"
        result = invoke("export-data", dataset, "--out", out)
        if result.exit_code == 0:
            assert (out / "reviews.pickle").is_file()
            assert not key or key[0] in ("name", "rating_range", "statistics", "counts")
            assert not key or case[2] or not beyond_digits(case[1])  # 5000 digits are no YAML Python reads
            return
        line = error_line(result, str(dataset))
        if key and "not valid YAML" not in line:
            # The fingerprint covers what the manifest says about the data files (splits.count included).
            assert f"'{key[0]}" in line or "'fingerprint'" in line, line
        assert_no_output(out)


@property_settings(25)
@given(value=st.one_of(YAML_JUNK, st.lists(st.one_of(st.floats(), st.integers()), min_size=2, max_size=2)))
@example(value=[float("nan"), 5.0])  # was accepted, and RMSE/MAE came out NaN
@example(value=[1, 10**400])  # would have been an OverflowError
def test_bad_rating_range(value: Any) -> None:
    with scratch() as root:
        dataset = root / "data"
        dataset.mkdir()
        write_features(dataset)
        manifest = {"format": "pepler-dataset/1", "rating_range": value}
        (dataset / "manifest.yaml").write_bytes(yaml_bytes(manifest))
        predictions = root / "preds.jsonl"
        write_predictions(predictions, PREDICTIONS)
        result = invoke("score", predictions, "--data", dataset)
        if result.exit_code == 0:
            low, high = value
            assert math.isfinite(low) and math.isfinite(high) and low <= high
            return
        error_line(result, str(dataset / "manifest.yaml"), "'rating_range'")
        assert_no_output(root / "preds.scores.yaml")


# ------------------------------------------------------------------------------------------ run manifests


@pytest.fixture(scope="module")
def tiny_run(nete_tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("tiny-run") / "run"
    result = invoke(
        "train", "--data", nete_tiny_data, "--out", run, "--backbone", "gpt2-tiny", "--strategy",
        "prompt-only", "--rating-head", "mf", "--epochs", "1", "--batch-size", "32", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


RUN_KEYS = (
    ("format",),
    ("config",),
    ("config", "backbone"),
    ("config", "backbone_path"),
    ("config", "prompt"),
    ("config", "rating_head"),
    ("dataset",),
    ("dataset", "path"),
    ("dataset", "split"),
    ("files",),
    ("files", "users.txt"),
    ("lora",),
    ("backbone",),
    ("backbone", "weights"),
    ("name",),
)


@st.composite
def bad_run_manifest(draw: st.DrawFn) -> tuple[tuple[str, ...], Any, bool] | Damage:
    if draw(st.integers(0, 4)) == 0:
        return draw(DAMAGE)  # to the manifest's bytes
    key = draw(st.sampled_from(RUN_KEYS))
    extra = ("gpt2", "mlp", "mf", "discrete", "continuous", {"rank": 4})
    return key, draw(st.one_of(YAML_JUNK, st.sampled_from(extra))), draw(st.booleans())


@property_settings(15)  # each example loads a model: the explicit ones below add nine
@given(case=bad_run_manifest())
# Each was a traceback: KeyError, TypeError, AttributeError, ValueError, RuntimeError (a head not trained).
@example(case=(("config",), None, True))
@example(case=(("config", "backbone"), 5, False))
@example(case=(("files",), [1], False))
@example(case=(("dataset", "split"), "one", False))
@example(case=(("lora",), {"rank": 4}, False))
@example(case=(("backbone",), "gpt2", False))
@example(case=(("config", "rating_head"), "mlp", False))
# Were a success that silently ignored the prompt weights, and an error line cut in two.
@example(case=(("config", "prompt"), "discrete", False))
@example(case=(("dataset", "path"), "a\nb", False))
def test_bad_run_manifest(tiny_run: Path, case: Any) -> None:
    """`generate` loads a run: a damaged manifest is one line naming it (or the file it points to)."""
    with scratch() as root:
        run = Path(shutil.copytree(tiny_run, root / "run"))
        path = run / "manifest.yaml"
        if isinstance(case, Damage):
            path.write_bytes(case(path.read_bytes()))
            key: tuple[str, ...] = ()
            value = None
        else:
            key, value, delete = case
            manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
            change(manifest, key, value, delete)
            path.write_bytes(yaml_bytes(manifest))
        out = root / "preds.jsonl"
        result = invoke("generate", run, "--out", out, "--limit", "2", "--device", "cpu")
        if result.exit_code == 0:
            assert len(out.read_text(encoding="utf-8").splitlines()) == 2
            return
        line = error_line(result)
        if key == ("dataset", "path") and isinstance(value, str):
            assert one_line(str(Path(value))) in line or str(path) in line, line  # the dataset, or the field
        else:
            assert str(run) in line, line
            if key and key[0] != "files" and "not valid YAML" not in line:
                assert any(f"'{part}" in line for part in key), line
        assert_no_output(out)
