"""`pepler probe`: explanations with the users, items or features permuted, on tiny GPT-2 runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.probe import _permute

runner = CliRunner()
NETE_TINY = Path(__file__).parent / "fixtures" / "nete-tiny"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("probe") / "data"
    result = invoke("prepare", "tripadvisor", "--source", NETE_TINY, "--out", data)
    assert result.exit_code == 0, result.output
    return data


def _train(data: Path, out: Path, *options: str) -> Path:
    trained = invoke(
        "train", "--data", data, "--out", out, "--backbone", "gpt2-tiny", "--epochs", "1", "--batch-size", "32",
        "--device", "cpu", *options,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    return out


@pytest.fixture(scope="module")
def continuous_run(prepared: Path, tmp_path_factory) -> Path:
    return _train(prepared, tmp_path_factory.mktemp("runs") / "continuous", "--strategy", "prompt-only")


def test_permuting_rows_reports_the_share_really_reassigned() -> None:
    inputs = PromptInputs(torch.tensor([0, 0, 1, 2]), torch.tensor([5, 6, 7, 8]))
    # rows 0 and 1 swap the same user: unchanged; rows 2 and 3 swap users 1 and 2: changed → 2 of 4
    permuted, reassigned = _permute(inputs, "users", torch.tensor([1, 0, 3, 2]))
    assert permuted.users.tolist() == [0, 0, 2, 1] and permuted.items.tolist() == [5, 6, 7, 8]
    assert reassigned == 0.5
    permuted, reassigned = _permute(inputs, "items", torch.tensor([1, 0, 3, 2]))
    assert permuted.items.tolist() == [6, 5, 8, 7] and reassigned == 1.0


def test_permuting_a_discrete_prompt_moves_tokens_and_mask_together() -> None:
    tokens = torch.tensor([[0, 7, 8], [9, 9, 9], [0, 7, 8]])
    mask = tokens != 0
    inputs = PromptInputs(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), tokens, mask)
    permuted, reassigned = _permute(inputs, "features", torch.tensor([2, 1, 0]))
    assert torch.equal(permuted.prompt_tokens, tokens[[2, 1, 0]])
    assert torch.equal(permuted.prompt_mask, mask[[2, 1, 0]])
    assert reassigned == 0.0  # rows 0 and 2 hold the same features; row 1 stays


def test_probe_writes_what_each_permutation_changed(continuous_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    result = invoke("probe", continuous_run, "--out", out, "--limit", "24", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "probe:" in result.stdout and "wrote" in result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["format"] == "pepler-probe/1" and document["n"] <= 24
    assert set(document["variants"]) == {"users", "items"}
    for variant in document["variants"].values():
        assert 0 < variant["reassigned"] <= 1 and 0 <= variant["changed"] <= 1
        for key, value in variant["scores"].items():
            assert variant["delta"][key] == pytest.approx(value - document["baseline"][key])
        for sample in variant["samples"]:
            assert sample["as_trained"] != sample["permuted"]
    again = tmp_path / "again.json"
    assert invoke("probe", continuous_run, "--out", again, "--limit", "24", "--device", "cpu").exit_code == 0
    assert json.loads(again.read_text(encoding="utf-8"))["variants"] == document["variants"]  # same seed


def test_an_existing_probe_file_is_kept_without_overwrite(continuous_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    out.write_text("mine\n", encoding="utf-8")
    result = invoke("probe", continuous_run, "--out", out, "--limit", "4", "--device", "cpu")
    assert result.exit_code != 0 and "--overwrite" in result.output and "Traceback" not in result.output
    assert out.read_text(encoding="utf-8") == "mine\n"


def test_a_discrete_run_is_probed_by_its_features(prepared: Path, tmp_path: Path) -> None:
    run = _train(prepared, tmp_path / "discrete", "--prompt", "discrete", "--strategy", "fixed-prompt")
    out = tmp_path / "probe.json"
    result = invoke("probe", run, "--out", out, "--limit", "16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert set(document["variants"]) == {"features"}
