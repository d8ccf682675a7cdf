"""Preparing raw reviews: reading JSON lines / CSV, dropping, extraction, truncation, splits."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pepler_cli.data import extraction
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.writing import Truncation
from pepler_cli.data.raw import (
    FieldMap,
    RawReviews,
    drop_duplicate_pairs,
    explain_reviews,
    prepare_raw,
    raw_format,
    read_raw_reviews,
)
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.text_cleanup import clean_up_spaces

SAMPLE = Path(__file__).parent / "fixtures" / "amazon-musical-instruments-sample.jsonl"
# In the repository (the demo's dataset), so the test runs on every clone.
REAL_FILE = (
    Path(__file__).resolve().parents[1]
    / "examples"
    / "amazon-musical-instruments"
    / "reviews_Musical_Instruments_5.json.gz"
)


def _sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def _fake_extract(texts, progress=None, reasons=None):
    """Explain every review whose text mentions 'the'; the feature is the review's first long word."""
    found = []
    for text in texts:
        words = [w.strip(".,!?").lower() for w in text.split() if len(w) > 5]
        if " the " in f" {text} " and words:
            found.append(SimpleNamespace(feature=words[0], opinion="good", sentence=text, sentiment=1))
        else:
            found.append(None)
    if progress is not None:
        progress(len(texts))
    return found


@pytest.fixture()
def fake_extractor(monkeypatch):
    monkeypatch.setattr(extraction, "extract_explanations", _fake_extract)


def test_read_the_sample():
    reviews = read_raw_reviews(SAMPLE)
    rows = _sample_rows()
    assert len(reviews) == 40
    assert reviews.users == [r["reviewerID"] for r in rows]
    assert reviews.items == [r["asin"] for r in rows]
    assert reviews.ratings == [float(r["overall"]) for r in rows]
    assert reviews.texts == [r["reviewText"] for r in rows]


def _write_csv(
    path: Path, rows: list[dict], fieldnames=("reviewerID", "asin", "overall", "reviewText", "summary")
):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("name", ["reviews.json.gz", "reviews.csv", "reviews.csv.gz", "reviews.JSONL"])
def test_formats_by_extension(tmp_path, name):
    rows = _sample_rows()
    rows[0]["reviewText"] = 'commas, "quotes"\nand a newline'
    path = tmp_path / name
    if "csv" in name.lower():
        _write_csv(path, rows)
        assert raw_format(path) == "csv"
    else:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as handle:
            handle.write("\n".join(json.dumps(r) for r in rows) + "\n\n")  # a trailing blank line is fine
        assert raw_format(path) == "jsonl"
    reviews = read_raw_reviews(path)
    assert reviews.texts == [r["reviewText"] for r in rows]
    assert reviews.ratings == [float(r["overall"]) for r in rows]


def test_field_mapping(tmp_path):
    path = tmp_path / "yelp.jsonl"
    path.write_text('{"uid": 7, "bid": "b1", "stars": "4.5", "body": "fine"}\n')
    reviews = read_raw_reviews(path, FieldMap(user="uid", item="bid", rating="stars", text="body"))
    assert (reviews.users, reviews.items, reviews.ratings, reviews.texts) == (["7"], ["b1"], [4.5], ["fine"])


GOOD = '{"reviewerID": "u", "asin": "i", "overall": 5.0, "reviewText": "fine"}'


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"reviewerID": "u", "asin": ', "line 3: not valid JSON"),
        ("[1, 2]", "line 3: expected a JSON object, got list"),
        (
            '{"asin": "i", "overall": 5, "reviewText": "t"}',
            "line 3: field 'reviewerID' is missing (choose the field with --user-field)",
        ),
        (
            '{"reviewerID": "u", "asin": "i", "overall": "five", "reviewText": "t"}',
            "line 3: field 'overall': expected a number, got 'five'",
        ),
        (
            '{"reviewerID": "u", "asin": "i", "overall": NaN, "reviewText": "t"}',
            "line 3: field 'overall': expected a finite number",
        ),
        ('{"reviewerID": "u", "asin": "i", "overall": true, "reviewText": "t"}', "line 3: field 'overall'"),
        (
            '{"reviewerID": " ", "asin": "i", "overall": 5, "reviewText": "t"}',
            "line 3: field 'reviewerID': is empty",
        ),
        (
            '{"reviewerID": "u", "asin": [1], "overall": 5, "reviewText": "t"}',
            "line 3: field 'asin': expected an id",
        ),
        (
            '{"reviewerID": "u", "asin": "i", "overall": 5, "reviewText": ["t"]}',
            "line 3: field 'reviewText': expected text",
        ),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path, bad, message):
    path = tmp_path / "reviews.jsonl"
    path.write_text(f"{GOOD}\n{GOOD}\n{bad}\n{GOOD}" + "\n")
    with pytest.raises(PeplerError) as caught:
        read_raw_reviews(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message and "\n" not in caught.value.message


def test_csv_problems(tmp_path):
    path = tmp_path / "reviews.csv"
    _write_csv(
        path, [{"reviewerID": "u", "asin": "i", "reviewText": "t"}], ("reviewerID", "asin", "reviewText")
    )
    with pytest.raises(PeplerError, match=r"line 1: field 'overall' is not a column .*--rating-field"):
        read_raw_reviews(path)
    path.write_text("reviewerID,asin,overall,reviewText\nu,i,5,fine\nu2,i2,x,fine\n")
    with pytest.raises(PeplerError, match=r"reviews.csv: line 3: field 'overall': expected a number"):
        read_raw_reviews(path)


def test_null_text_counts_as_empty_and_missing_file_is_a_usage_error(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"reviewerID": "u", "asin": "i", "overall": 5, "reviewText": null}\n')
    assert read_raw_reviews(path).texts == [""]
    with pytest.raises(UsageError, match="no such file"):
        read_raw_reviews(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PeplerError, match="holds no reviews"):
        read_raw_reviews(tmp_path / "empty.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"reviewerID": "\xe9"}\n')
    with pytest.raises(PeplerError, match="not UTF-8"):
        read_raw_reviews(tmp_path / "latin1.jsonl")


def test_html_entities_are_decoded_before_extraction(tmp_path):
    # As in the bundled Amazon reviews: "&#34;quick tune&#34;", "R&amp;B"; a bare "&" stays as written.
    review = {
        "reviewerID": "u",
        "asin": "i",
        "overall": 5,
        "reviewText": "The &#34;quick tune&#34; is great & R&amp;B too.",
    }
    path = tmp_path / "reviews.jsonl"
    path.write_text(json.dumps(review) + "\n")
    assert read_raw_reviews(path).texts == ['The "quick tune" is great & R&B too.']
    found = extraction.extract_explanations(read_raw_reviews(path).texts)[0]
    assert found is not None and "&#34;" not in found.sentence and "&" not in found.feature


def test_duplicates_keep_the_first():
    reviews = RawReviews(
        ["a", "a", "b", "a"], ["x", "x", "x", "y"], [1.0, 2.0, 3.0, 4.0], ["t1", "t2", "t3", "t4"]
    )
    kept, dropped = drop_duplicate_pairs(reviews)
    assert dropped == 1
    assert kept.ratings == [1.0, 3.0, 4.0] and kept.texts == ["t1", "t3", "t4"]


def test_reviews_without_explanation_are_dropped(fake_extractor):
    reviews = RawReviews(["a", "b"], ["x", "y"], [1.0, 2.0], ["the splendid sound", "nothing here"])
    columns, dropped = explain_reviews(reviews)
    assert dropped == 1 and columns.users == ["a"] and columns.features == ["splendid"]
    assert columns.opinions == ["good"] and columns.sentiments == [1]


def test_prepare_with_a_fake_extractor(tmp_path, fake_extractor, tokenizer):
    rows = _sample_rows()
    rows.insert(5, dict(rows[2], reviewText="a later duplicate of the same pair"))
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "data" / "sample"
    result = prepare_raw(path, out, name="sample", seed=7, truncation=Truncation(tokenizer))

    kept = [r for n, r in enumerate(rows) if n != 5]
    explained = [r for r in kept if _fake_extract([r["reviewText"]])[0] is not None]
    counts = result.manifest["counts"]
    assert counts["reviews_read"] == 41 and counts["dropped_duplicates"] == 1
    assert counts["dropped_no_explanation"] == len(kept) - len(explained)
    assert counts["reviews_dropped"] == 41 - len(explained) and counts["records"] == len(explained)

    dataset = load_prepared(out)
    for record, row in zip(dataset.records, explained):
        assert (record.user, record.item) == (row["reviewerID"], row["asin"])
        truncated = tokenizer.decode(tokenizer(row["reviewText"])["input_ids"][:20])
        assert record.text == clean_up_spaces(truncated)  # as the authors' transformers 4.x decoded it
    assert dataset.features == sorted({r.feature for r in dataset.records})
    users = {r.user for r in dataset.records}
    for train, validation, test in dataset.splits.values():
        assert sorted(train + validation + test) == list(range(len(dataset.records)))
        assert {dataset.records[i].user for i in train} == users
    manifest = dataset.manifest
    assert manifest["splits"]["seed"] == 7 and manifest["splits"]["ratios"] == [0.8, 0.1, 0.1]
    assert manifest["source"]["kind"] == "raw" and list(manifest["source"]["sha256"]) == ["reviews.jsonl"]
    assert manifest["source"]["fields"] == {
        "user": "reviewerID",
        "item": "asin",
        "rating": "overall",
        "text": "reviewText",
    }
    # The same seed gives the same dataset.
    again = prepare_raw(path, tmp_path / "again", name="sample", seed=7, truncation=Truncation(tokenizer))
    assert again.manifest["fingerprint"] == manifest["fingerprint"]


def test_nothing_explained_is_an_error(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setattr(
        extraction, "extract_explanations", lambda texts, progress=None, reasons=None: [None] * len(texts)
    )
    with pytest.raises(PeplerError, match="no review yielded an explanation"):
        prepare_raw(SAMPLE, tmp_path / "out", name="x", truncation=Truncation(tokenizer))
    assert not (tmp_path / "out").exists()


def test_prepare_the_sample_with_the_real_extractor(tmp_path, tokenizer):
    result = prepare_raw(SAMPLE, tmp_path / "sample", name="sample", truncation=Truncation(tokenizer))
    dataset = load_prepared(tmp_path / "sample")
    assert 0 < len(dataset.records) <= 40
    assert all(r.feature and r.text and r.sentiment in (1, -1) and r.opinion for r in dataset.records)
    assert result.manifest["counts"]["reviews_read"] == 40


def test_a_few_hundred_real_reviews(tmp_path, tokenizer):
    path = tmp_path / "head.json.gz"
    with (
        gzip.open(REAL_FILE, "rt", encoding="utf-8") as source,
        gzip.open(path, "wt", encoding="utf-8") as target,
    ):
        for _, line in zip(range(300), source):
            target.write(line)
    result = prepare_raw(
        path, tmp_path / "mi", name="amazon-musical-instruments", truncation=Truncation(tokenizer)
    )
    counts = result.manifest["counts"]
    assert counts["reviews_read"] == 300 and counts["dropped_duplicates"] == 0
    assert 150 < counts["records"] <= 300
    dataset = load_prepared(tmp_path / "mi")
    assert len(dataset.records) == counts["records"]
    assert result.statistics.words_per_explanation > 3
