"""Resumable training: a run interrupted after any epoch and resumed ends exactly as an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
from pepler_cli.errors import PeplerError
from pepler_cli.runs import read_manifest
from pepler_cli.training.checkpoint import PROGRESS_FILE, checkpoint_dir
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.train import train as train_run

runner = CliRunner()


@pytest.fixture(scope="module")
def data(nete_tiny_data: Path) -> Path:
    return nete_tiny_data


def config(data: Path, out: Path, **options) -> TrainConfig:
    settings = {
        "data": data,
        "out": out,
        "backbone": "gpt2-tiny",
        "epochs": 2,
        "batch_size": 16,
        "rating_head": "mlp",
    }
    return TrainConfig(**{**settings, **options})


class StopAt(SilentReporter):
    """Interrupts training (as Ctrl-C would) when the given stage's given epoch starts."""

    def __init__(self, stage: str, epoch: int) -> None:
        self.stage, self.epoch = stage, epoch

    def epoch_started(self, stage, epoch, batches):
        if (stage.name, epoch) == (self.stage, self.epoch):
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    train_run(config(data, out), "test", SilentReporter())
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    found = load_file(str(run / "prompt.safetensors"))
    found.update({f"lm.{k}": v for k, v in load_file(str(run / "backbone.safetensors")).items()})
    return found


def stage_losses(run: Path) -> list[list[tuple]]:
    manifest = read_manifest(run)
    keys = ("epoch", "train_loss", "valid_loss", "valid_rating_mse", "improved")
    return [[tuple(e[k] for k in keys) for e in s["epochs"]] for s in manifest["stages"]]


@pytest.mark.parametrize(
    ("stage", "epoch"),
    [("prompt", 2), ("prompt+lm", 1), ("prompt+lm", 2)],
    ids=["inside-the-first-stage", "between-stages", "inside-the-second-stage"],
)
def test_a_resumed_run_equals_an_uninterrupted_one(data, uninterrupted, tmp_path, stage, epoch):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out), "test", StopAt(stage, epoch))
    checkpoint = checkpoint_dir(out)
    assert not out.exists()
    assert sorted(p.name for p in checkpoint.iterdir())[0] == PROGRESS_FILE
    assert len(list(checkpoint.glob("state-*.safetensors"))) == 1  # older states are removed

    manifest = train_run(config(data, out, resume=True), "test", SilentReporter())
    assert not checkpoint.exists()  # the finished run replaced it
    assert manifest["config"]["resume"] is True
    assert stage_losses(out) == stage_losses(uninterrupted)
    resumed, whole = weights(out), weights(uninterrupted)
    assert resumed.keys() == whole.keys()
    for name in whole:
        assert torch.equal(resumed[name], whole[name]), name


def test_a_left_checkpoint_is_not_silently_ignored_or_lost(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, strategy="joint"), "test", StopAt("prompt+lm", 2))
    with pytest.raises(PeplerError, match="--resume"):
        train_run(config(data, out, strategy="joint"), "test", SilentReporter())
    assert checkpoint_dir(out).exists()
    # --overwrite discards it and starts over.
    manifest = train_run(config(data, out, strategy="joint", overwrite=True), "test", SilentReporter())
    assert len(manifest["stages"][0]["epochs"]) == 2 and not checkpoint_dir(out).exists()


def test_resuming_with_other_options_is_refused(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, strategy="joint"), "test", StopAt("prompt+lm", 2))
    with pytest.raises(PeplerError, match="learning_rate: 0.001 then, 0.01 now"):
        train_run(
            config(data, out, strategy="joint", learning_rate=0.01, resume=True), "test", SilentReporter()
        )
    assert checkpoint_dir(out).exists()


def test_a_damaged_checkpoint_is_one_clear_error(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, strategy="joint"), "test", StopAt("prompt+lm", 2))
    (state,) = checkpoint_dir(out).glob("state-*.safetensors")
    state.write_bytes(b"not safetensors")
    with pytest.raises(PeplerError, match="damaged checkpoint"):
        train_run(config(data, out, strategy="joint", resume=True), "test", SilentReporter())


def test_resume_without_a_checkpoint_starts_afresh(data, tmp_path):
    out = tmp_path / "run"
    manifest = train_run(config(data, out, strategy="joint", epochs=1, resume=True), "test", SilentReporter())
    assert len(manifest["stages"][0]["epochs"]) == 1


def test_the_cli_resumes_and_says_how_after_an_interrupt(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--backbone",
        "gpt2-tiny",
        "--strategy",
        "joint",
        "--epochs",
        "2",
        "--batch-size",
        "16",
    ]
    import pepler_cli.training.train as run_module

    real = run_module.train
    monkeypatch.setattr(
        run_module, "train", lambda c, command=None, reporter=None: real(c, command, StopAt("prompt+lm", 2))
    )
    interrupted = runner.invoke(app, args)
    assert interrupted.exit_code == 130
    assert "--resume" in interrupted.output and "Traceback" not in interrupted.output
    monkeypatch.setattr(run_module, "train", real)
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.output
    assert [e["epoch"] for e in read_manifest(out)["stages"][0]["epochs"]] == [1, 2]


def epoch(number: int, loss: float, improved: bool):
    from pepler_cli.training.loop import EpochRecord

    return EpochRecord(number, loss, loss, loss, 1.0, None, 1.0, 1.0, improved)


@pytest.mark.parametrize("best_epoch", [1, 2])
def test_a_checkpoint_keeps_the_best_weights_apart_only_when_they_differ(data, tmp_path, tiny_lm, best_epoch):
    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.modeling.continuous import ContinuousPromptModel
    from pepler_cli.strategies import PROMPT_STAGE
    from pepler_cli.training.checkpoint import load_checkpoint, save_checkpoint
    from pepler_cli.training.loop import StageProgress, StageRecord, make_optimizer, set_trainable

    model = ContinuousPromptModel(tiny_lm, 5, 7)
    trainable = set_trainable(model, PROMPT_STAGE)
    best = [p.detach() + 1.0 for p in trainable]
    record = StageRecord(
        "prompt",
        ["prompt"],
        [epoch(1, 2.0, True), epoch(2, 1.0 if best_epoch == 2 else 3.0, best_epoch == 2)],
    )
    record.best_epoch, record.best_valid_loss = best_epoch, 2.0 if best_epoch == 1 else 1.0
    progress = StageProgress(record, 0 if best_epoch == 2 else 1, best)
    settings = config(data, tmp_path / "run")
    fingerprint = load_prepared(data).fingerprint
    directory = tmp_path / "ckpt"
    save_checkpoint(
        directory,
        settings,
        fingerprint,
        model,
        {"prompt"},
        [],
        progress,
        make_optimizer(trainable, 1e-3),
        1.0,
    )
    loaded = load_checkpoint(directory, settings, fingerprint)
    assert loaded.current.record == record
    if best_epoch == 2:  # the last epoch was the best: the weights are stored once
        assert loaded.current.best_state is None
    else:
        assert [torch.equal(a, b) for a, b in zip(loaded.current.best_state, best)] == [True] * len(best)
    assert set(loaded.model_state) == {
        name for name, p in model.named_parameters() if name.startswith(("user", "item"))
    }


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(_truncate, "sha256 differs"), (_alter, "sha256 differs"), (Path.unlink, "No such file")],
    ids=["truncated", "altered", "missing"],
)
def test_a_damaged_state_file_is_named(data, tmp_path, damage, expected):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, strategy="joint"), "test", StopAt("prompt+lm", 2))
    (state,) = checkpoint_dir(out).glob("state-*.safetensors")
    damage(state)
    with pytest.raises(PeplerError) as error:
        train_run(config(data, out, strategy="joint", resume=True), "test", SilentReporter())
    assert error.value.message.startswith(f"{state}: ")
    assert expected in error.value.message and "damaged checkpoint" in error.value.message


def test_a_directory_without_checkpoint_yaml_is_not_a_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(data, out, strategy="joint"), "test", StopAt("prompt+lm", 2))
    (checkpoint_dir(out) / PROGRESS_FILE).unlink()  # as if killed before the first save was committed
    manifest = train_run(config(data, out, strategy="joint", resume=True), "test", SilentReporter())
    assert [e["epoch"] for e in manifest["stages"][0]["epochs"]] == [1, 2]  # started afresh
