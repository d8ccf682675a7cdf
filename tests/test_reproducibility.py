"""The same options, seed and software give the same run and the same explanations, byte for byte.

The README's figures are re-made by committed scripts; this is what makes them re-makeable. A LoRA stage and a
rating head are included because each draws random numbers of its own (adapters, head, dropout).
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pepler_cli.cli.app import app

runner = CliRunner()


def _train_and_generate(data: Path, out: Path) -> tuple[bytes, dict[str, str]]:
    run = out / "run"
    train = ["train", "--data", str(data), "--out", str(run), "--backbone", "gpt2-tiny", "--epochs", "1"]
    train += ["--strategy", "sequential-lora", "--rating-head", "mlp", "--batch-size", "8", "--seed", "5"]
    result = runner.invoke(app, [*train, "--logger", "none"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["generate", str(run), "--out", str(out / "preds.jsonl")])
    assert result.exit_code == 0, result.output
    import yaml

    files = yaml.safe_load((run / "manifest.yaml").read_text())["files"]
    return (out / "preds.jsonl").read_bytes(), files


def test_two_runs_with_the_same_seed_write_the_same_weights_and_explanations(nete_tiny_data, tmp_path):
    first = _train_and_generate(nete_tiny_data, tmp_path / "a")
    second = _train_and_generate(nete_tiny_data, tmp_path / "b")
    assert first[1] == second[1]  # every file of the run, weights included, by sha256
    assert first[0] == second[0] and first[0].count(b"\n") > 0
