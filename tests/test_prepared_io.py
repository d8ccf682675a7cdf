"""Writing and reading the prepared-dataset format of docs/formats.md."""

from __future__ import annotations

import json

import pytest
import yaml

from pepler_cli.data.prepared import writing as prepared_writing
from pepler_cli.data.prepared.fingerprint import dataset_fingerprint
from pepler_cli.data.prepared.layout import FORMAT
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import PreparedDataset, Record, RecordColumns
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.data.stats import PAPER_TABLE4, compute_statistics, statistics_table
from pepler_cli.errors import PeplerError

RECORDS = [
    Record("u1", "i1", 5.0, "the sound is crisp", "sound", "crisp", 1),
    Record("u2", "i1", 1.0, 'a "quoted" naïve café ☕ \\ back\tslash', "café", "naïve", -1),
    Record("u1", "i2", 3.0, "no opinion known here", "price"),
    Record("u3", "i2", 4, "line\nbreak and \u2028 separator", "price", "good", 1),
]
SPLITS = {k: ([0, 1, 2] if k % 2 else [2, 1, 0], [3], []) for k in range(1, 6)}


def _write(out, records=RECORDS, splits=SPLITS, **kwargs):
    options = {
        "name": "tiny",
        "source": {"kind": "raw", "path": "/x", "sha256": {"x": "0" * 64}},
        "splits_info": {"count": len(splits), "method": "by hand", "seed": None, "ratios": [0.8, 0.1, 0.1]},
        "extra_counts": {"reviews_read": 5, "reviews_dropped": 1},
        "config": {"seed": 1},
    }
    options.update(kwargs)
    return write_prepared(out, records, splits, **options)


def test_round_trip(tmp_path):
    out = tmp_path / "tiny"
    manifest = _write(out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(
        ["manifest.yaml", "records.jsonl", "features.txt"]
        + [f"splits/{k}/{part}.index" for k in range(1, 6) for part in ("train", "validation", "test")]
    )
    loaded = load_prepared(out)
    assert isinstance(loaded, PreparedDataset)
    assert loaded.records == [r._replace(rating=float(r.rating)) for r in RECORDS]
    assert loaded.features == ["café", "price", "sound"]
    assert loaded.splits == {k: tuple(v) for k, v in SPLITS.items()}
    assert loaded.manifest == manifest == yaml.safe_load((out / "manifest.yaml").read_text())
    assert loaded.fingerprint == manifest["fingerprint"] and len(loaded.fingerprint) == 64
    assert loaded.name == "tiny"
    assert loaded.users() == ["u1", "u2", "u3"] and loaded.items() == ["i1", "i2"]
    train, validation, test = loaded.split_records(2)
    assert [r.user for r in train] == ["u1", "u2", "u1"] and validation == [loaded.records[3]] and test == []


def test_manifest_keys_and_values(tmp_path):
    manifest = _write(tmp_path / "tiny")
    assert list(manifest)[:12] == [
        "format",
        "name",
        "pepler_version",
        "created",
        "source",
        "counts",
        "statistics",
        "rating_range",
        "max_explanation_tokens",
        "tokenizer",
        "splits",
        "fingerprint",
    ]
    assert manifest["format"] == FORMAT
    assert manifest["counts"] == {
        "users": 3,
        "items": 2,
        "records": 4,
        "features": 3,
        "reviews_read": 5,
        "reviews_dropped": 1,
    }
    assert manifest["statistics"] == {
        "records_per_user": 1.33,
        "records_per_item": 2.0,
        "words_per_explanation": 5.0,
    }
    assert manifest["rating_range"] == [1.0, 5.0]
    assert manifest["max_explanation_tokens"] == 20 and manifest["tokenizer"] == "gpt2"
    assert manifest["config"] == {"seed": 1}
    assert dataset_fingerprint(manifest["files"]) == manifest["fingerprint"]


def test_records_are_json_lines_in_the_documented_shape(tmp_path):
    out = tmp_path / "tiny"
    _write(out)
    lines = (out / "records.jsonl").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 5  # one record a line, newline-terminated
    assert json.loads(lines[0]) == {
        "user": "u1",
        "item": "i1",
        "rating": 5.0,
        "text": "the sound is crisp",
        "feature": "sound",
        "opinion": "crisp",
        "sentiment": 1,
    }
    assert lines[0] == json.dumps(json.loads(lines[0]), ensure_ascii=False)
    assert "opinion" not in json.loads(lines[2])
    assert "naïve café ☕" in lines[1]  # UTF-8, not \\u escapes
    assert (out / "splits" / "1" / "train.index").read_text() == "0 1 2\n"
    assert (out / "splits" / "2" / "train.index").read_text() == "2 1 0\n"


def test_columns_and_records_write_the_same_bytes(tmp_path):
    a = _write(tmp_path / "a")
    b = _write(tmp_path / "b", records=RecordColumns.from_records(RECORDS))
    assert a["fingerprint"] == b["fingerprint"]
    assert RecordColumns.from_records(RECORDS).to_records() == RECORDS


def test_lone_surrogates_survive_as_json_escapes(tmp_path):
    records = [Record("u", "i", 1.0, "bad \ud800 char", "f")]
    _write(tmp_path / "s", records=records, splits={1: ([0], [], [])})
    assert load_prepared(tmp_path / "s").records[0].text == "bad \ud800 char"


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "tiny"
    _write(out)
    with pytest.raises(PeplerError, match="already exists"):
        _write(out)
    _write(out, records=RECORDS[:2], splits={1: ([0], [1], [])}, overwrite=True)
    assert len(load_prepared(out).records) == 2


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(prepared_writing, "_write_hashed", fail)
    with pytest.raises(PeplerError, match=r"tiny: cannot write \(disk full\)"):
        _write(tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "records, splits, message",
    [
        ([], {1: ([], [], [])}, "no records"),
        (RECORDS, {1: ([0, 9], [], [])}, "outside 0..3"),
        ([Record("u", "i", float("nan"), "t", "f")], {1: ([0], [], [])}, "record 0: rating nan"),
    ],
)
def test_write_refuses_bad_input(tmp_path, records, splits, message):
    with pytest.raises(PeplerError, match=message):
        _write(tmp_path / "tiny", records=records, splits=splits)
    assert not (tmp_path / "tiny").exists()


# --------------------------------------------------------------------------------------------- load errors


@pytest.fixture()
def dataset(tmp_path):
    out = tmp_path / "tiny"
    _write(out)
    return out


def _rewrite_manifest(out, **changes):
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    manifest.update(changes)
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest))


def test_load_missing_directory(tmp_path):
    with pytest.raises(PeplerError, match="no such prepared dataset"):
        load_prepared(tmp_path / "absent")
    with pytest.raises(PeplerError, match="manifest.yaml: missing"):
        load_prepared(tmp_path)


def test_load_wrong_format(dataset):
    _rewrite_manifest(dataset, format="something/9")
    with pytest.raises(PeplerError, match="field 'format'"):
        load_prepared(dataset)


def test_load_missing_split_file(dataset):
    (dataset / "splits" / "3" / "test.index").unlink()
    with pytest.raises(PeplerError, match=r"splits/3/test.index: missing"):
        load_prepared(dataset)


def test_load_names_a_changed_file(dataset):
    path = dataset / "features.txt"
    path.write_text(path.read_text() + "extra\n")
    with pytest.raises(PeplerError) as caught:
        load_prepared(dataset)
    assert "features.txt: changed since it was prepared" in caught.value.message
    assert load_prepared(dataset, verify=False).features[-1] == "extra"


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2 (record 1): not valid JSON"),
        ("[1, 2]", "line 2 (record 1): expected a JSON object, got list"),
        (
            '{"user": "u", "item": "i", "rating": 1, "text": "t"}',
            "line 2 (record 1): field 'feature' is missing",
        ),
        (
            '{"user": 7, "item": "i", "rating": 1, "text": "t", "feature": "f"}',
            "field 'user': expected a string",
        ),
        (
            '{"user": "u", "item": "i", "rating": "5", "text": "t", "feature": "f"}',
            "field 'rating': expected a number",
        ),
        ('{"user": "u", "item": "i", "rating": true, "text": "t", "feature": "f"}', "field 'rating'"),
        (
            '{"user": "u", "item": "i", "rating": 1, "text": "t", "feature": "f", "sentiment": 0}',
            "field 'sentiment'",
        ),
        (
            '{"user": "u", "item": "i", "rating": 1, "text": "t", "feature": "f", "opinion": 3}',
            "field 'opinion'",
        ),
    ],
)
def test_load_names_file_line_and_field(dataset, line, message):
    path = dataset / "records.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[1] = line
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PeplerError) as caught:
        load_prepared(dataset, verify=False)
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_two_values_on_one_line_are_caught(dataset):
    path = dataset / "records.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0] + ", " + lines[0]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PeplerError, match="line 1 .*not valid JSON"):
        load_prepared(dataset, verify=False)


def test_load_index_problems(dataset):
    path = dataset / "splits" / "1" / "train.index"
    path.write_text("0 1 x\n")
    with pytest.raises(PeplerError, match=r"train.index: entry 3 is 'x', not a record number"):
        load_prepared(dataset, verify=False)
    path.write_text("0 4\n")
    with pytest.raises(PeplerError, match=r"train.index: entry 2 is record 4, outside 0..3"):
        load_prepared(dataset, verify=False)


def test_load_count_mismatch(dataset):
    _rewrite_manifest(dataset, counts={"records": 9})
    with pytest.raises(PeplerError, match=r"counts.records' says 9, but records.jsonl holds 4"):
        load_prepared(dataset, verify=False)


def test_load_bad_split_count(dataset):
    _rewrite_manifest(dataset, splits={"count": "five"})
    with pytest.raises(PeplerError, match="splits.count"):
        load_prepared(dataset)


# ---------------------------------------------------------------------------------------------- statistics


def test_statistics_and_table():
    stats = compute_statistics(
        ["a", "a", "b"], ["x", "y", "y"], ["one two", "three", "four five six"], ["f", "g"]
    )
    assert stats.as_dict() == {
        "users": 2,
        "items": 2,
        "records": 3,
        "features": 2,
        "records_per_user": 1.5,
        "records_per_item": 1.5,
        "words_per_explanation": 2.0,
    }
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(statistics_table("yelp", stats, PAPER_TABLE4["yelp"]))
    text = console.export_text()
    assert "1,293,247" in text and "Words / explanation" in text and "47.64" in text
