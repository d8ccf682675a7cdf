"""A run's files are checked when it is loaded: truncated, altered, missing or unlisted files are one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
from pepler_cli.runs import MANIFEST
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.train import train as train_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run(nete_tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("integrity") / "run"
    settings = TrainConfig(data=nete_tiny_data, out=out, backbone="gpt2-tiny", epochs=1, batch_size=16)
    train_run(settings, "test", SilentReporter())
    return out


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def unlist(run: Path, name: str) -> None:
    manifest = yaml.safe_load((run / MANIFEST).read_text())
    del manifest["files"][name]
    (run / MANIFEST).write_text(yaml.safe_dump(manifest))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda run: truncate(run / "backbone.safetensors"), "backbone.safetensors: sha256 differs"),
        (lambda run: alter(run / "prompt.safetensors"), "prompt.safetensors: sha256 differs"),
        (lambda run: (run / "users.txt").unlink(), "users.txt: missing (listed in manifest.yaml)"),
        (
            lambda run: (run / "tokenizer" / "extra.json").write_text("{}"),
            "extra.json: not listed in manifest",
        ),
        (lambda run: unlist(run, "prompt.safetensors"), "prompt.safetensors: not listed in manifest"),
        (lambda run: (run / MANIFEST).unlink(), "not a pepler run (no manifest.yaml)"),
    ],
    ids=["truncated", "altered", "missing", "slipped-in", "unlisted", "no-manifest"],
)
def test_a_damaged_run_is_named_in_one_line(run, tmp_path, damage, expected):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damage(copy)
    out = tmp_path / "preds.jsonl"
    result = runner.invoke(app, ["generate", str(copy), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 1
    assert expected in result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
