"""`pepler train --logger`: training scalars for TensorBoard or CSV, in the run's logs/, rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pepler_cli.config import TrainConfig
from pepler_cli.runs import read_manifest
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.scalars import logs_dir
from pepler_cli.training.train import train as train_run


def config(data: Path, out: Path, **options) -> TrainConfig:
    settings = {"data": data, "out": out, "backbone": "gpt2-tiny", "epochs": 2, "batch_size": 8}
    return TrainConfig(**{**settings, **options})


def test_csv_scalars_follow_every_epoch_of_every_stage(nete_tiny_data, tmp_path):
    out = tmp_path / "run"
    manifest = train_run(config(nete_tiny_data, out, logger="csv"), "test", SilentReporter())
    path = out / "logs" / "scalars.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    valid = [(r["tag"], int(r["step"]), float(r["value"])) for r in rows if r["tag"].endswith("/valid_loss")]
    expected = [
        (f"{stage['name']}/valid_loss", number, epoch["valid_loss"])
        for number, (stage, epoch) in enumerate(
            ((s, e) for s in manifest["stages"] for e in s["epochs"]), start=1
        )
    ]
    assert [(t, s) for t, s, _ in valid] == [(t, s) for t, s, _ in expected]
    assert [v for _, _, v in valid] == pytest.approx([v for _, _, v in expected], rel=1e-5)
    assert any(r["tag"] == "prompt/running_loss" for r in rows)
    assert "logs/scalars.csv" in read_manifest(out)["files"]  # part of the run, hashed like the rest
    assert not logs_dir(out).exists()  # moved into the run


def test_tensorboard_events_hold_the_epochs(nete_tiny_data, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train_run(config(nete_tiny_data, out, logger="tensorboard", epochs=1), "test", SilentReporter())
    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"prompt/valid_loss", "prompt+lm/valid_loss", "prompt/valid_perplexity"} <= tags
    assert [e.step for e in events.Scalars("prompt+lm/train_loss")] == [2]


def test_no_logger_no_logs(nete_tiny_data, tmp_path):
    out = tmp_path / "run"
    train_run(config(nete_tiny_data, out, logger="none", epochs=1), "test", SilentReporter())
    assert not (out / "logs").exists()
