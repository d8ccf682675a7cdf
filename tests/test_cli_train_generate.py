"""`pepler train`/`generate`/`plugins` options: config files, overrides, clear errors, fast help."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from pepler_cli.cli.app import app

runner = CliRunner()


def test_help_lists_every_subcommand():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("prepare", "train", "generate", "score", "plugins"):
        assert command in result.output


def test_help_does_not_import_torch():
    code = "import sys; from pepler_cli.cli.app import app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_plugins_json_lists_builtins():
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    names = {(r["name"], r["kind"]) for r in rows}
    assert ("gpt2-tiny", "backbone") in names and ("mlp", "rating_head") in names
    assert all(r["description"] and r["package"] and r["version"] for r in rows)


def test_plugins_table():
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "gpt2-tiny" in result.output and "mlp" in result.output


def test_unknown_backbone_lists_available_ones(tmp_path):
    from pathlib import Path

    data = tmp_path / "data"
    fixture = Path(__file__).parent / "fixtures" / "nete-tiny"
    assert (
        runner.invoke(app, ["prepare", "tripadvisor", "--source", str(fixture), "--out", str(data)]).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--backbone", "gpt5"]
    )
    assert result.exit_code == 2
    assert "unknown backbone 'gpt5'" in result.output and "gpt2-tiny" in result.output


def test_config_file_is_read_and_flags_override_it(tmp_path):
    from pepler_cli.config import TrainConfig, resolve

    config = tmp_path / "c.yaml"
    config.write_text("data: d\nout: r\nbatch-size: 32\nstrategy: joint\nlearning_rate: 0.01\n")
    resolved = resolve(TrainConfig, config, {"batch_size": 8, "strategy": None})
    assert resolved.batch_size == 8
    assert resolved.strategy == "joint"
    assert resolved.learning_rate == 0.01
    assert resolved.epochs == 100 and resolved.patience == 5


def test_bad_config_values_are_one_clear_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: d\nout: r\nstrategy: sideways\n")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert "c.yaml: option strategy" in result.output and "Traceback" not in result.output
    config.write_text("data: d\nout: r\nbatchsize: 3\n")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "batchsize" in result.output


def test_missing_required_options_exit_2():
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2 and "option data" in result.output
    result = runner.invoke(app, ["generate", "nowhere"])
    assert result.exit_code == 2 and "option out" in result.output


def test_rating_weight_needs_a_rating_head(tmp_path):
    result = runner.invoke(app, ["train", "--data", "d", "--out", "r", "--rating-weight", "0.1"])
    assert result.exit_code == 2 and "--rating-weight needs --rating-head" in result.output


def test_generate_on_a_directory_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["generate", str(tmp_path), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 1 and "not a pepler run" in result.output
