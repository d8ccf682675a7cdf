"""preds.jsonl: reading validates every line; writing is atomic and round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pepler_cli.errors import PeplerError
from pepler_cli.predictions import Prediction, read_predictions, write_predictions

GOOD = {
    "user": "u1",
    "item": "i1",
    "reference": "the sound is crisp",
    "generated": "the sound is great",
    "feature": "sound",
    "rating": 5.0,
    "predicted_rating": 4.6,
}


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path) -> None:
    predictions = [
        Prediction(**GOOD),
        Prediction("u2", "i2", "ref\u2028with a line separator", "gen ü", "bass"),  # no ratings
    ]
    path = tmp_path / "preds.jsonl"
    write_predictions(path, predictions)
    assert read_predictions(path) == predictions
    second = json.loads(path.read_text(encoding="utf-8").split("\n")[1])
    assert "rating" not in second and "predicted_rating" not in second  # unknown ratings are left out
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]  # no temporary file left behind


def test_integer_ratings_become_floats_and_null_means_unknown(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", json.dumps({**GOOD, "rating": 4, "predicted_rating": None}))
    (prediction,) = read_predictions(path)
    assert prediction.rating == 4.0 and isinstance(prediction.rating, float)
    assert prediction.predicted_rating is None


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", json.dumps(GOOD), "", json.dumps({**GOOD, "user": 7}))
    with pytest.raises(PeplerError) as caught:
        read_predictions(path)
    assert caught.value.message == f"{path}: line 3: field 'user' must be a string, got a number"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"user": "u1", ', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got a list"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "generated"}), "missing field 'generated'"),
        (json.dumps({**GOOD, "reference": ["r"]}), "field 'reference' must be a string, got a list"),
        (json.dumps({**GOOD, "user": None}), "field 'user' must be a string, got null"),
        (json.dumps({**GOOD, "rating": "5"}), "field 'rating' must be a number, got a string"),
        (json.dumps({**GOOD, "predicted_rating": True}),
         "field 'predicted_rating' must be a number, got a boolean"),
        ('{"user": "u", "item": "i", "reference": "r", "generated": "g", "feature": "f", "rating": NaN}',
         "field 'rating' must be a finite number"),
    ],
)  # fmt: skip
def test_bad_line_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = write_lines(tmp_path / "preds.jsonl", json.dumps(GOOD), line)
    with pytest.raises(PeplerError) as caught:
        read_predictions(path)
    assert caught.value.message.startswith(f"{path}: line 2: {message}")
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 1


def test_reference_and_feature_may_be_absent(tmp_path: Path) -> None:
    """Predictions of a pairs file (generate --pairs) may have neither: absent, or null."""
    bare = {k: v for k, v in GOOD.items() if k not in ("reference", "feature")}
    path = write_lines(tmp_path / "p.jsonl", json.dumps(bare), json.dumps({**bare, "reference": None}))
    read = read_predictions(path)
    assert [(p.reference, p.feature) for p in read] == [(None, None), (None, None)]
    write_predictions(tmp_path / "again.jsonl", read)
    assert json.loads((tmp_path / "again.jsonl").read_text().splitlines()[0]) == bare


def test_missing_empty_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(PeplerError, match="no such predictions file"):
        read_predictions(tmp_path / "absent.jsonl")
    with pytest.raises(PeplerError, match="contains no predictions"):
        read_predictions(write_lines(tmp_path / "empty.jsonl", ""))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"user": "\xe9"}\n')
    with pytest.raises(PeplerError, match="not UTF-8"):
        read_predictions(latin)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    write_predictions(path, [Prediction(**GOOD)])
    before = path.read_bytes()

    def broken():
        yield Prediction(**GOOD)
        raise RuntimeError("generation crashed")

    with pytest.raises(RuntimeError):
        write_predictions(path, broken())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]
