"""prepare → train → generate → score through the real `pepler` app, on a tiny NETE fixture and gpt2-tiny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app

FIXTURE = Path(__file__).parent / "fixtures" / "nete-tiny"
runner = CliRunner()

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
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    test_index = (data / "splits" / "1" / "test.index").read_text().split()
    assert len(lines) == len(test_index)
    assert set(lines[0]) >= {"user", "item", "reference", "generated", "feature", "rating"}
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.stdout)
    assert scores["n"] == len(lines)
    assert {"bleu_1", "bleu_4", "rouge_1_f", "rouge_2_f", "usr", "fmr", "fcr", "div"} <= set(scores)
    assert (root / "preds.scores.yaml").is_file()


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
    regenerate = invoke("generate", run, "--out", preds)
    assert regenerate.exit_code == 1 and "already exists" in regenerate.output


def test_training_is_repeatable_with_a_seed(pipeline, tmp_path):
    from safetensors.torch import load_file

    _, data, run, _ = pipeline
    args = ["--data", data, "--backbone", "gpt2-tiny", "--epochs", "2", "--batch-size", "16", "--seed", "3",
            "--device", "cpu"]
    assert invoke("train", *args, "--out", tmp_path / "again").exit_code == 0
    first, second = load_file(run / "prompt.safetensors"), load_file(tmp_path / "again" / "prompt.safetensors")
    assert all((first[k] == second[k]).all() for k in first)


def test_prompt_only_run_references_the_frozen_backbone(tmp_path, pipeline):
    _, data, _, _ = pipeline
    out = tmp_path / "prompt-only"
    result = invoke("train", "--data", data, "--out", out, "--backbone", "gpt2-tiny", "--logger", "csv", "--strategy", "prompt-only",
                    "--epochs", "1", "--batch-size", "32", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert files_under(out) == EXPECTED_RUN_FILES - {"backbone.safetensors", "backbone_config.json"}
    generated = invoke("generate", out, "--out", tmp_path / "p.jsonl", "--limit", "3", "--device", "cpu")
    assert generated.exit_code == 0, generated.output
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 3


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
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output


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
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert all(isinstance(r["predicted_rating"], float) for r in rows)
    scored = invoke("score", preds, "--data", data, "--json")
    scores = json.loads(scored.stdout)
    assert scores["rmse"] >= 0 and scores["mae"] >= 0


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
    scored = invoke("score", preds, "--data", data, "--json")
    assert scored.exit_code == 0, scored.output
    assert ("rmse" in json.loads(scored.stdout)) == ("rating-head" in expected)
