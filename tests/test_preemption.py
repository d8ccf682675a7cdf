"""Pre-emption and crashes: checkpoints inside an epoch, SIGTERM/SIGINT, SIGKILL, non-finite losses, locks."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pepler_cli.config import TrainConfig
from pepler_cli.errors import PeplerError
from pepler_cli.files import output_lock
from pepler_cli.runs import read_manifest
from pepler_cli.training.checkpoint import PROGRESS_FILE, checkpoint_dir, is_checkpoint
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.train import train as train_run

REPO = Path(__file__).resolve().parent.parent
# Small batches: many optimizer steps per epoch, so that a stop lands inside one.
OPTIONS = {"backbone": "gpt2-tiny", "epochs": 2, "batch_size": 4, "rating_head": "mlp", "seed": 7}


def config(data: Path, out: Path, **options) -> TrainConfig:
    return TrainConfig(data=data, out=out, **{**OPTIONS, **options})


def weights(run: Path) -> dict[str, torch.Tensor]:
    found = load_file(str(run / "prompt.safetensors"))
    found.update({f"lm.{k}": v for k, v in load_file(str(run / "backbone.safetensors")).items()})
    return found


def epoch_losses(run: Path) -> list[list[tuple]]:
    keys = ("epoch", "train_loss", "valid_loss", "valid_rating_mse", "improved")
    return [[tuple(e[k] for k in keys) for e in s["epochs"]] for s in read_manifest(run)["stages"]]


def assert_same_run(run: Path, reference: Path) -> None:
    assert epoch_losses(run) == epoch_losses(reference)
    ours, theirs = weights(run), weights(reference)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), name


@pytest.fixture(scope="module")
def uninterrupted(nete_tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    train_run(config(nete_tiny_data, out), "test", SilentReporter())
    return out


class StopAfter:
    """Stands in for the signal handlers: "receives" SIGTERM after the given number of optimizer steps."""

    def __init__(self, steps: int, reason: str = "SIGTERM") -> None:
        self.left, self.reason = steps, reason

    @contextlib.contextmanager
    def __call__(self):
        def asked() -> str | None:
            self.left -= 1
            return self.reason if self.left < 0 else None

        yield asked


@pytest.mark.parametrize("steps", [5, 13, 30], ids=["first-epoch", "second-epoch", "second-stage"])
def test_a_stop_mid_epoch_saves_and_resumes_from_the_next_batch(
    nete_tiny_data, uninterrupted, tmp_path, monkeypatch, steps
):
    import pepler_cli.training.train as train_module

    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "stop_on_signals", StopAfter(steps))
    with pytest.raises(PeplerError) as stopped:
        train_run(config(nete_tiny_data, out), "pepler train --out run", SilentReporter())
    assert stopped.value.exit_code == 143
    assert "SIGTERM: training stopped" in stopped.value.message
    assert "continue with: pepler train --out run --resume" in stopped.value.message
    assert not out.exists() and is_checkpoint(checkpoint_dir(out))
    monkeypatch.undo()
    train_run(config(nete_tiny_data, out, resume=True), "test", SilentReporter())
    assert_same_run(out, uninterrupted)


def test_checkpoint_every_saves_inside_the_epoch(nete_tiny_data, tmp_path, monkeypatch):
    import pepler_cli.training.train as train_module

    saved: list[dict] = []
    real = train_module.save_checkpoint

    def spy(directory, config, fingerprint, model, groups, finished, current, optimizer, seconds, write):
        position = current.position
        saved.append({"epoch": len(current.record.epochs), "done": position and position.batches_done})
        real(directory, config, fingerprint, model, groups, finished, current, optimizer, seconds, write)

    monkeypatch.setattr(train_module, "save_checkpoint", spy)
    train_run(
        config(nete_tiny_data, tmp_path / "run", checkpoint_every=4, epochs=1), "test", SilentReporter()
    )
    # Per stage: steps 4, 8 inside the epoch (the epoch's 12 batches end with a save after validation).
    batches = [s["done"] for s in saved]
    assert batches == [4, 8, None, 4, 8, None]


def test_a_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    nete_tiny_data, tmp_path, monkeypatch
):
    from dataclasses import replace

    from pepler_cli.training.steps import LossForward

    real = LossForward.forward
    calls = {"n": 0}

    def poisoned(self, batch):
        losses = real(self, batch)
        calls["n"] += 1
        if calls["n"] == 15:  # the first stage's second epoch, its third step
            losses = replace(losses, text_nll_sum=losses.text_nll_sum * float("nan"))
        return losses

    monkeypatch.setattr(LossForward, "forward", poisoned)
    out = tmp_path / "run"
    with pytest.raises(PeplerError) as stopped:
        train_run(config(nete_tiny_data, out), "test", SilentReporter())
    message = stopped.value.message
    assert "training text loss is not finite at stage prompt, epoch 2, step 3" in message
    assert "last good checkpoint is kept" in message
    assert not out.exists()
    # The kept checkpoint is the one after epoch 1: finite weights, one finished epoch.
    progress = (checkpoint_dir(out) / PROGRESS_FILE).read_text()
    assert "position: null" in progress
    (state,) = checkpoint_dir(out).glob("state-*.safetensors")
    assert all(torch.isfinite(t.float()).all() for t in load_file(str(state)).values())


def test_a_second_writer_of_the_same_output_is_refused(nete_tiny_data, tmp_path):
    out = tmp_path / "run"
    with output_lock(out), pytest.raises(PeplerError, match="another pepler process"):
        train_run(config(nete_tiny_data, out, epochs=1), "test", SilentReporter())
    assert not out.exists()


def test_a_killed_holder_does_not_leave_the_lock_stuck(tmp_path):
    out = tmp_path / "run"
    holder = (
        "import os, signal, sys\n"
        "from pepler_cli.files import output_lock\n"
        "with output_lock(sys.argv[1]):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    killed = subprocess.run([sys.executable, "-c", holder, str(out)], env=env, check=False)
    assert killed.returncode == -signal.SIGKILL
    with output_lock(out):  # acquired: the kernel released the dead process's lock
        pass
    assert not list(tmp_path.iterdir())  # and a finished holder leaves nothing behind


def _pepler(*args: str) -> list[str]:
    return [sys.executable, "-m", "pepler_cli", *args]


def _train_args(data: Path, out: Path) -> list[str]:
    flags = ["--backbone", "gpt2-tiny", "--epochs", "2", "--batch-size", "4", "--rating-head", "mlp"]
    return ["train", "--data", str(data), "--out", str(out), *flags, "--seed", "7"]


def _wait_for_position(checkpoint: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the running training has saved a checkpoint inside an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            if "batches_done" in (checkpoint / PROGRESS_FILE).read_text():
                return
        time.sleep(0.02)
    raise AssertionError("training never saved a checkpoint inside an epoch")


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run(nete_tiny_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    whole = tmp_path / "whole"
    done = subprocess.run(
        _pepler(*_train_args(nete_tiny_data, whole)), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    args = [*_train_args(nete_tiny_data, out), "--checkpoint-every", "1"]
    process = subprocess.Popen(_pepler(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_position(checkpoint_dir(out), process)
    time.sleep(random.Random().uniform(0.0, 0.5))  # a random moment: possibly in the middle of a save
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()

    resumed = subprocess.run(_pepler(*args, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert_same_run(out, whole)
    assert not checkpoint_dir(out).exists()


@pytest.mark.slow
@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_checkpoint_says_how_to_resume_and_exits(nete_tiny_data, tmp_path, sent, code):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "run"
    args = [*_train_args(nete_tiny_data, out), "--checkpoint-every", "2"]
    process = subprocess.Popen(
        _pepler(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_position(checkpoint_dir(out), process)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "training stopped" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert is_checkpoint(checkpoint_dir(out)) and not out.exists()
