"""`pepler plot`: the figures decode, and hold what they should (titles, series, error bars)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.plots import plot_bars, plot_curves, plot_sweep
from pepler_cli.runs import RUN_FORMAT

runner = CliRunner()


def epoch(n: int, train: float, valid: float) -> dict:
    return {"epoch": n, "train_loss": train, "valid_loss": valid, "valid_perplexity": 2.718**valid}


def make_run(root: Path, name: str, split: int, strategy: str, lr: float, bleu: float) -> Path:
    run = root / name
    run.mkdir(parents=True)
    manifest = {
        "format": RUN_FORMAT,
        "name": name,
        "config": {"split": split, "strategy": strategy, "learning_rate": lr, "prompt": "continuous"},
        "stages": [
            {
                "name": "prompt",
                "best_epoch": 2,
                "epochs": [epoch(1, 5.0, 4.8), epoch(2, 4.5, 4.4), epoch(3, 4.2, 4.5)],
            },
            {"name": "prompt+lm", "best_epoch": 1, "epochs": [epoch(1, 3.9, 3.7), epoch(2, 3.5, 3.8)]},
        ],
        "scores": {f"split {split} test": {"bleu_4": bleu, "usr": 0.3}},
    }
    (run / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return run


@pytest.fixture
def sweep_runs(tmp_path) -> list[Path]:
    runs = []
    for strategy, offset in (("joint", 0.0), ("sequential", 1.0)):
        for lr in (0.0001, 0.001, 0.01):
            for split in (1, 2):
                bleu = offset + 10 * lr + split * 0.1
                runs.append(make_run(tmp_path, f"{strategy}-{lr}-s{split}", split, strategy, lr, bleu))
    return runs


def decoded(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.size[0] > 200 and image.size[1] > 150
    assert len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 2  # something is drawn
    return image


def test_training_curves_mark_stages_and_best_epochs(sweep_runs, tmp_path):
    drawn = plot_curves(sweep_runs[0], tmp_path / "curves.png")
    assert drawn["title"] == "joint-0.0001-s1: training curves"
    assert drawn["stages"] == [
        {"stage": "prompt", "epochs": 3, "best_epoch": 2},
        {"stage": "prompt+lm", "epochs": 2, "best_epoch": 1},
    ]
    decoded(tmp_path / "curves.png")
    plot_curves(sweep_runs[0], tmp_path / "curves.svg")
    svg = (tmp_path / "curves.svg").read_text()
    assert "training curves" in svg and "validation perplexity" in svg


def test_a_metric_against_a_sweep_axis_with_one_line_per_strategy(sweep_runs, tmp_path):
    drawn = plot_sweep(sweep_runs, "learning-rate", "bleu_4", tmp_path / "fig6.png", lines="strategy")
    assert drawn["title"] == "BLEU-4 against learning-rate by strategy"
    joint = drawn["series"]["joint"]
    assert joint["x"] == [0.0001, 0.001, 0.01] and joint["n"] == [2, 2, 2]
    assert joint["mean"][1] == pytest.approx(statistics.mean([0.01 + 0.1, 0.01 + 0.2]))
    assert joint["std"][1] == pytest.approx(statistics.stdev([0.11, 0.21]))
    assert drawn["series"]["sequential"]["mean"][0] == pytest.approx(1.001 + 0.15)
    decoded(tmp_path / "fig6.png")


def test_bars_of_groups_and_the_cli(sweep_runs, tmp_path):
    drawn = plot_bars(sweep_runs[:4], "usr", tmp_path / "bars.svg", group_by=["split"])
    assert drawn["title"] == "USR ↑, mean over split"
    assert set(drawn["bars"]) == {"joint-0.0001", "joint-0.001"}
    assert "USR" in (tmp_path / "bars.svg").read_text()
    result = runner.invoke(
        app,
        ["plot", "bars", *map(str, sweep_runs[:2]), "--metric", "bleu_4", "--out", str(tmp_path / "b.png")],
    )
    assert result.exit_code == 0, result.output
    decoded(tmp_path / "b.png")


def test_a_wrong_figure_name_or_metric_is_one_line(sweep_runs, tmp_path):
    bad_suffix = runner.invoke(app, ["plot", "curves", str(sweep_runs[0]), "--out", str(tmp_path / "f.jpg")])
    assert bad_suffix.exit_code == 2 and "must end in .png or .svg" in bad_suffix.output
    bad_metric = runner.invoke(
        app,
        [
            "plot",
            "sweep",
            str(sweep_runs[0]),
            "--x",
            "split",
            "--metric",
            "bleu9",
            "--out",
            str(tmp_path / "f.png"),
        ],
    )
    assert bad_metric.exit_code == 2 and "--metric bleu9: not a metric" in bad_metric.output
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.jpg").exists()
