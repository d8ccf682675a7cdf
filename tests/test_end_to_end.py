"""prepare → train → generate → score through the real `pepler` app, on a tiny NETE fixture and gpt2-tiny."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app

FIXTURE = Path(__file__).parent / "fixtures" / "nete-tiny"
runner = CliRunner()

# The paper's metrics as `pepler score` prints them: label -> (key in scores, decimals shown).
EXPLANATION_METRICS = {
    "FMR": ("fmr", 4), "FCR": ("fcr", 4), "DIV": ("div", 3), "USR": ("usr", 4), "USN": ("usn", 0),
    "BLEU-1": ("bleu_1", 2), "BLEU-4": ("bleu_4", 2),
    "R1-P": ("rouge_1_precision", 2), "R1-R": ("rouge_1_recall", 2), "R1-F": ("rouge_1_f", 2),
    "R2-P": ("rouge_2_precision", 2), "R2-R": ("rouge_2_recall", 2), "R2-F": ("rouge_2_f", 2),
    "RL-P": ("rouge_l_precision", 2), "RL-R": ("rouge_l_recall", 2), "RL-F": ("rouge_l_f", 2),
}  # fmt: skip
RATING_METRICS = {"RMSE": ("rmse", 3), "MAE": ("mae", 3)}


def _reference_evaluation():
    """tests/reference_evaluation.py: the naive second implementation of the paper's metrics."""
    path = Path(__file__).with_name("reference_evaluation.py")
    spec = importlib.util.spec_from_file_location("reference_evaluation_e2e", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def split_test_records(data: Path, split: int = 1) -> list[dict]:
    """The prepared dataset's test records of ``split``, in the order of its test.index."""
    records = read_jsonl(data / "records.jsonl")
    return [records[int(i)] for i in (data / "splits" / str(split) / "test.index").read_text().split()]




def assert_pairs_are_the_test_split(rows: list[dict], data: Path) -> None:
    """One prediction per test pair, in order: its user, item, reference text, feature and rating."""
    expected = split_test_records(data)[: len(rows)]
    assert [(r["user"], r["item"]) for r in rows] == [(e["user"], e["item"]) for e in expected]
    assert [r["reference"] for r in rows] == [e["text"] for e in expected]
    assert [r["feature"] for r in rows] == [e["feature"] for e in expected]
    assert [r["rating"] for r in rows] == [e["rating"] for e in expected]
    assert all(isinstance(r["generated"], str) for r in rows)


def assert_plausible(scores: dict, n: int) -> None:
    """Every paper metric is there and within the range it can take."""
    assert scores["n"] == n
    keys = [key for key, _ in EXPLANATION_METRICS.values()]
    for key in keys:
        assert isinstance(scores[key], (int, float)) and math.isfinite(scores[key]), key
    for key in (key for key in keys if key.startswith(("bleu", "rouge"))):
        assert 0 <= scores[key] <= 100, (key, scores[key])
    assert 0 <= scores["fmr"] <= 1 and 0 <= scores["fcr"] <= 1 and scores["div"] >= 0
    assert isinstance(scores["usn"], int) and 1 <= scores["usn"] <= n
    assert scores["usr"] == pytest.approx(scores["usn"] / n)


def rating_errors(rows: list[dict], low: float, high: float) -> tuple[float, float]:
    """RMSE and MAE of the predicted ratings, clipped into [low, high] as the paper did."""
    errors = [min(high, max(low, r["predicted_rating"])) - r["rating"] for r in rows]
    return math.sqrt(sum(e * e for e in errors) / len(errors)), sum(abs(e) for e in errors) / len(errors)

EXPECTED_RUN_FILES = {
    "manifest.yaml",
    "prompt.safetensors",
    "backbone.safetensors",
    "backbone_config.json",
    "users.txt",
    "items.txt",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "logs/scalars.csv",  # --logger csv: the training scalars, part of the run
}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data, run, preds = root / "data", root / "run", root / "preds.jsonl"
    prepared = invoke("prepare", "tripadvisor", "--source", FIXTURE, "--out", data)
    assert prepared.exit_code == 0, prepared.output
    trained = invoke(
        "train", "--data", data, "--out", run, "--backbone", "gpt2-tiny", "--epochs", "2",
        "--batch-size", "16", "--seed", "3", "--device", "cpu", "--logger", "csv",
    )
    assert trained.exit_code == 0, trained.output
    generated = invoke("generate", run, "--out", preds, "--device", "cpu")
    assert generated.exit_code == 0, generated.output
    return root, data, run, preds


def files_under(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def test_run_directory_holds_exactly_the_expected_files(pipeline):
    _, _, run, _ = pipeline
    assert files_under(run) == EXPECTED_RUN_FILES
    assert not list(run.parent.glob(".*partial*")), "no temporary directory left behind"


def test_manifest_records_config_versions_stages_and_hashes(pipeline):
    _, data, run, _ = pipeline
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    data_manifest = yaml.safe_load((data / "manifest.yaml").read_text())
    assert manifest["config"]["strategy"] == "sequential"
    assert manifest["config"]["backbone"] == "gpt2-tiny"
    assert manifest["plugins"]["backbone"]["package"] == "pepler-gpt2"
    assert manifest["dataset"]["fingerprint"] == data_manifest["fingerprint"]
    assert [s["name"] for s in manifest["stages"]] == ["prompt", "prompt+lm"]
    assert manifest["stages"][0]["trains"] == ["prompt"]
    assert manifest["stages"][1]["trains"] == ["prompt", "lm"]
    for stage in manifest["stages"]:
        assert len(stage["epochs"]) == 2 and stage["stopped"] == "epoch cap"
        assert stage["best_epoch"] in (1, 2)
    assert set(manifest["files"]) == EXPECTED_RUN_FILES - {"manifest.yaml"}
    assert manifest["backbone_weights"] == "tuned"


def test_predictions_cover_the_test_split_and_score(pipeline):
    root, data, _, preds = pipeline
    lines = read_jsonl(preds)
    test_index = (data / "splits" / "1" / "test.index").read_text().split()
    assert len(lines) == len(test_index) > 0
    assert all(set(line) >= {"user", "item", "reference", "generated", "feature", "rating"} for line in lines)
    assert_pairs_are_the_test_split(lines, data)
    assert all("predicted_rating" not in line for line in lines)  # no rating head, no predicted rating
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.stdout)
    assert_plausible(scores, len(lines))
    assert "rmse" not in scores and "mae" not in scores
    # The very numbers the naive second implementation gets from the same predictions and feature set.
    features = set((data / "features.txt").read_text(encoding="utf-8").split())
    naive = _reference_evaluation().evaluate(lines, features, (1.0, 5.0))
    for key, value in naive.items():
        assert scores[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    # The scores file records the same numbers, for these very predictions.
    document = yaml.safe_load((root / "preds.scores.yaml").read_text(encoding="utf-8"))
    assert document["format"] == "pepler-scores/1" and document["n"] == len(lines)
    assert document["predictions"]["sha256"] == hashlib.sha256(preds.read_bytes()).hexdigest()
    assert document["features"]["count"] == len(features) == 5
    assert document["scores"] == {key: value for key, value in scores.items() if key in document["scores"]}
    assert set(document["scores"]) == {key for key, _ in EXPLANATION_METRICS.values()}


def test_score_prints_the_table_of_every_metric(pipeline, tmp_path):
    _, data, _, preds = pipeline
    out = tmp_path / "scores.yaml"
    args = ["score", str(preds), "--data", str(data), "--no-record", "--out", str(out)]
    printed = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert printed.exit_code == 0, printed.output
    scores = yaml.safe_load(out.read_text(encoding="utf-8"))["scores"]
    assert f"(n = {len(read_jsonl(preds))})" in printed.stdout
    for label, (key, decimals) in EXPLANATION_METRICS.items():
        shown = f"{scores[key]:.{decimals}f}"
        row = rf"│\s*{re.escape(label)}\s*│\s*{re.escape(shown)}\s*│"
        assert re.search(row, printed.stdout), (label, shown, printed.stdout)
    assert "RMSE" not in printed.stdout  # no predicted ratings, no rating rows


def test_a_changed_weight_file_is_refused(pipeline, tmp_path):
    import shutil

    _, _, run, _ = pipeline
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with open(copy / "prompt.safetensors", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    result = invoke("generate", copy, "--out", tmp_path / "p.jsonl", "--device", "cpu")
    assert result.exit_code == 1
    assert "prompt.safetensors: sha256 differs" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.jsonl").exists()


def test_finished_outputs_are_never_replaced_without_overwrite(pipeline):
    _, data, run, preds = pipeline
    before = (run / "manifest.yaml").read_text()
    again = invoke("train", "--data", data, "--out", run, "--backbone", "gpt2-tiny", "--epochs", "1")
    assert again.exit_code == 1 and "already exists" in again.output
    assert (run / "manifest.yaml").read_text() == before
    written = preds.read_bytes()
    regenerate = invoke("generate", run, "--out", preds)
    assert regenerate.exit_code == 1 and "already exists" in regenerate.output
    assert f"{preds}: already exists; choose another --out or pass --overwrite" in regenerate.output
    assert preds.read_bytes() == written


def test_training_is_repeatable_with_a_seed(pipeline, tmp_path):
    from safetensors.torch import load_file

    _, data, run, _ = pipeline
    args = ["--data", data, "--backbone", "gpt2-tiny", "--epochs", "2", "--batch-size", "16", "--seed", "3",
            "--device", "cpu"]
    assert invoke("train", *args, "--out", tmp_path / "again").exit_code == 0
    first, second = load_file(run / "prompt.safetensors"), load_file(tmp_path / "again" / "prompt.safetensors")
    assert first and first.keys() == second.keys()
    assert all(first[k].shape == second[k].shape and (first[k] == second[k]).all() for k in first)


def test_prompt_only_run_references_the_frozen_backbone(tmp_path, pipeline):
    _, data, _, _ = pipeline
    out = tmp_path / "prompt-only"
    result = invoke("train", "--data", data, "--out", out, "--backbone", "gpt2-tiny", "--logger", "csv", "--strategy", "prompt-only",
                    "--epochs", "1", "--batch-size", "32", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert files_under(out) == EXPECTED_RUN_FILES - {"backbone.safetensors", "backbone_config.json"}
    generated = invoke("generate", out, "--out", tmp_path / "p.jsonl", "--limit", "3", "--device", "cpu")
    assert generated.exit_code == 0, generated.output
    rows = read_jsonl(tmp_path / "p.jsonl")
    assert len(rows) == 3
    assert_pairs_are_the_test_split(rows, data)  # --limit 3: the first three test pairs


def test_discrete_prompt_run_end_to_end(tmp_path, pipeline):
    _, data, _, _ = pipeline
    out, preds = tmp_path / "pepler-d", tmp_path / "d.jsonl"
    result = invoke("train", "--data", data, "--out", out, "--backbone", "gpt2-tiny", "--logger", "csv", "--prompt", "discrete",
                    "--epochs", "1", "--batch-size", "32", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert files_under(out) == EXPECTED_RUN_FILES - {"prompt.safetensors"}
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["config"]["strategy"] == "fixed-prompt" and manifest["config"]["learning_rate"] == 1e-4
    assert [s["trains"] for s in manifest["stages"]] == [["lm"]]
    assert invoke("generate", out, "--out", preds, "--device", "cpu").exit_code == 0
    rows = read_jsonl(preds)
    assert len(rows) == len(split_test_records(data))
    assert_pairs_are_the_test_split(rows, data)
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    assert_plausible(json.loads(scored.stdout), len(rows))


@pytest.mark.parametrize("head", ["mf", "mlp"])
def test_rating_heads_predict_ratings_that_score(tmp_path, pipeline, head):
    _, data, _, _ = pipeline
    out, preds = tmp_path / head, tmp_path / f"{head}.jsonl"
    result = invoke("train", "--data", data, "--out", out, "--backbone", "gpt2-tiny", "--strategy", "joint",
                    "--rating-head", head, "--rating-weight", "0.1", "--epochs", "1", "--batch-size", "32",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["plugins"]["rating_head"]["package"] == "pepler-rating-heads"
    assert manifest["stages"][0]["epochs"][0]["valid_rating_mse"] is not None
    assert invoke("generate", out, "--out", preds, "--device", "cpu").exit_code == 0
    rows = read_jsonl(preds)
    assert len(rows) == len(split_test_records(data))
    assert_pairs_are_the_test_split(rows, data)
    assert all(isinstance(r["predicted_rating"], float) for r in rows)
    assert all(math.isfinite(r["predicted_rating"]) for r in rows)
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.stdout)
    assert_plausible(scores, len(rows))
    # Clipped into the whole dataset's rating range (1..5 here), as the paper did.
    ratings = [r["rating"] for r in read_jsonl(data / "records.jsonl")]
    assert (min(ratings), max(ratings)) == (1.0, 5.0)
    rmse, mae = rating_errors(rows, 1.0, 5.0)
    assert scores["rmse"] == pytest.approx(rmse, rel=1e-9) and scores["mae"] == pytest.approx(mae, rel=1e-9)
    assert 0 <= scores["mae"] <= scores["rmse"] <= 4  # no clipped guess is more than 4 stars off


CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"


@pytest.mark.parametrize("variant", ["pepler", "pepler-d", "pepler-mf", "pepler-mlp", "prompt-only", "joint"])
def test_every_paper_variant_config_trains_generates_and_scores(tmp_path, pipeline, variant):
    _, data, _, _ = pipeline
    out, preds = tmp_path / variant, tmp_path / f"{variant}.jsonl"
    config = CONFIGS / f"{variant}.yaml"
    result = invoke("train", "--config", config, "--data", data, "--out", out, "--backbone", "gpt2-tiny",
                    "--epochs", "1", "--batch-size", "32", "--device", "cpu")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    expected = yaml.safe_load(config.read_text())
    assert manifest["config"]["prompt"] == expected["prompt"]
    assert manifest["config"]["strategy"] == expected["strategy"]
    assert manifest["config"]["rating_head"] == expected.get("rating-head")
    assert invoke("generate", out, "--out", preds, "--device", "cpu", "--limit", "4").exit_code == 0
    rows = read_jsonl(preds)
    assert len(rows) == 4
    assert_pairs_are_the_test_split(rows, data)
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.stdout)
    assert_plausible(scores, 4)
    assert ("rmse" in scores) == ("rating-head" in expected) == all("predicted_rating" in r for r in rows)
    if "rating-head" in expected:
        rmse, mae = rating_errors(rows, 1.0, 5.0)
        assert scores["rmse"] == pytest.approx(rmse, rel=1e-9)
        assert scores["mae"] == pytest.approx(mae, rel=1e-9)
