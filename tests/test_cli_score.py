"""`pepler score` through Typer's CliRunner: options, outputs, the scores file and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.score import score_command
from pepler_cli.evaluation.scoring import ALL_KEYS, score_predictions
from pepler_cli.files import sha256_file
from pepler_cli.predictions import Prediction, write_predictions

app = typer.Typer()
app.command("score")(score_command)


@app.command("other")
def _other() -> None:
    """A second command, so Typer keeps `score` as a subcommand as in the real app."""


runner = CliRunner()

PREDICTIONS = [
    Prediction("u1", "i1", "the room was clean", "the room is clean", "room", 5.0, 5.6),
    Prediction("u2", "i2", "the staff is friendly", "the room is clean", "staff", 3.0, 3.5),
    Prediction("u3", "i3", "great location", "friendly staff , great location", "location", 2.0, 0.2),
]


@pytest.fixture
def preds(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "preds.jsonl"
    write_predictions(path, PREDICTIONS)
    return path


@pytest.fixture
def feature_file(scored_dataset: Path) -> Path:
    return scored_dataset / "features.txt"


def test_data_prints_a_table_and_writes_scores_yaml(preds: Path, scored_dataset: Path) -> None:
    result = runner.invoke(app, ["score", str(preds), "--data", str(scored_dataset)])
    assert result.exit_code == 0, result.output
    for label in ("BLEU-1", "BLEU-4", "R1-F", "R2-F", "USR", "FMR", "FCR", "DIV", "RMSE", "MAE"):
        assert label in result.stdout

    written = yaml.safe_load((preds.parent / "preds.scores.yaml").read_text(encoding="utf-8"))
    features = set((scored_dataset / "features.txt").read_text(encoding="utf-8").split())
    expected = score_predictions(PREDICTIONS, features, (1.0, 5.0))
    assert written["n"] == 3
    assert written["predictions"]["sha256"] == sha256_file(preds)
    assert written["features"] == {"source": "data", "path": str(scored_dataset / "features.txt"), "count": 4}
    assert written["rating_range"] == {"min": 1.0, "max": 5.0, "source": "manifest"}
    assert written["scores"] == pytest.approx({k: v for k, v in expected.items() if k != "n"})
    assert "note:" not in result.stderr  # the manifest gave the range: nothing to warn about


def test_json_prints_every_score(preds: Path, scored_dataset: Path) -> None:
    result = runner.invoke(app, ["score", str(preds), "--data", str(scored_dataset), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) == set(ALL_KEYS)
    # clipped into [1, 5]: 5.6 -> 5, 3.5, 0.2 -> 1; errors 0, 0.5, 1 -> MAE = 1.5 / 3
    assert scores["mae"] == pytest.approx(0.5)
    # "the room is clean" twice, the third distinct: USN 2 of 3
    assert scores["usn"] == 2


def test_features_with_reference_range_notes_it(preds: Path, feature_file: Path) -> None:
    result = runner.invoke(app, ["score", str(preds), "--features", str(feature_file), "--json"])
    assert result.exit_code == 0, result.output
    assert "note: clipping predicted ratings into [2, 5]" in result.stderr
    # references' range [2, 5]: 5.6 -> 5, 3.5, 0.2 -> 2; errors 0, 0.5, 0 -> MAE = 0.5 / 3
    assert json.loads(result.stdout)["mae"] == pytest.approx(0.5 / 3)
    written = yaml.safe_load((preds.parent / "preds.scores.yaml").read_text(encoding="utf-8"))
    assert written["features"]["source"] == "file"
    assert written["rating_range"]["source"] == "references"


def test_features_with_rating_range_and_out(preds: Path, feature_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "s.yaml"
    args = [
        "score",
        str(preds),
        "--features",
        str(feature_file),
        "--rating-range",
        "1",
        "5",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["rating_range"]["source"] == "option"
    assert not (preds.parent / "preds.scores.yaml").exists()


def test_bad_line_exits_1_with_one_line(preds: Path, scored_dataset: Path) -> None:
    lines = preds.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"feature": "staff"', '"feature": 3')
    preds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["score", str(preds), "--data", str(scored_dataset)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {preds}: line 2: field 'feature' must be a string, got a number"
    ]
    assert "Traceback" not in result.output
    assert not (preds.parent / "preds.scores.yaml").exists()


@pytest.mark.parametrize("both", [False, True])
def test_exactly_one_of_data_and_features(preds: Path, scored_dataset: Path, both: bool) -> None:
    extra = (
        ["--data", str(scored_dataset), "--features", str(scored_dataset / "features.txt")] if both else []
    )
    result = runner.invoke(app, ["score", str(preds), *extra])
    assert result.exit_code == 2
    assert "exactly one of --data DIR or --features FILE" in result.stderr


def test_manifest_without_rating_range(preds: Path, scored_dataset: Path) -> None:
    (scored_dataset / "manifest.yaml").write_text("format: pepler-dataset/1\n", encoding="utf-8")
    result = runner.invoke(app, ["score", str(preds), "--data", str(scored_dataset)])
    assert result.exit_code == 1
    assert f"{scored_dataset / 'manifest.yaml'}: key 'rating_range' must be two numbers" in result.stderr


def test_text_only_predictions_need_no_rating_range(tmp_path: Path, feature_file: Path) -> None:
    path = tmp_path / "text.jsonl"
    write_predictions(
        path, [Prediction(p.user, p.item, p.reference, p.generated, p.feature) for p in PREDICTIONS]
    )
    result = runner.invoke(app, ["score", str(path), "--features", str(feature_file), "--json"])
    assert result.exit_code == 0, result.output
    assert "rmse" not in json.loads(result.stdout)
    assert "note:" not in result.stderr


def test_every_option_has_help() -> None:
    result = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--data", "--features", "--rating-range", "--json", "--out"):
        assert option in result.stdout
    assert "Feature set, one feature a line" in result.stdout
