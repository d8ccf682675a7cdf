"""Training scalars for TensorBoard or a CSV file (``pepler train --logger tensorboard|csv|none``).

Written by rank 0 while training, into ``<out>.logs/`` beside the run (TensorBoard can watch it live; a
resumed run appends to it), and moved into the finished run as ``logs/``. Per epoch: the training loss, the
validation loss, perplexity and rating MSE and the throughput, tagged ``<stage>/<name>`` against the epoch
count over all stages; every few optimizer steps the running training loss, tagged ``<stage>/running_loss``
against the step count over all epochs.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Protocol

from pepler_cli.errors import UsageError
from pepler_cli.strategies import Stage
from pepler_cli.training.loop import EpochRecord, Reporter

LOG_DIR, CSV_FILE = "logs", "scalars.csv"
LOGGERS = ("auto", "tensorboard", "csv", "none")


def logs_dir(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".logs")


class ScalarSink(Protocol):
    def add(self, tag: str, value: float, step: int) -> None: ...
    def close(self) -> None: ...


class CsvSink:
    """``scalars.csv``: tag, step, value, one scalar a line, appended to."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CSV_FILE
        fresh = not path.exists()
        self.handle = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close())
        self.writer = csv.writer(self.handle)
        if fresh:
            self.writer.writerow(["tag", "step", "value"])

    def add(self, tag: str, value: float, step: int) -> None:
        self.writer.writerow([tag, step, repr(float(value))])
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class TensorBoardSink:
    def __init__(self, directory: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory))

    def add(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


def open_sink(kind: str, directory: Path) -> ScalarSink | None:
    """The sink ``--logger`` asks for; ``auto``: TensorBoard when it is installed, else CSV."""
    if kind == "none":
        return None
    if kind in ("tensorboard", "auto"):
        try:
            import tensorboard  # noqa: F401 (SummaryWriter needs it)
        except ImportError:
            if kind == "tensorboard":
                raise UsageError(
                    "--logger tensorboard: pip install tensorboard (or use --logger csv)"
                ) from None
            return CsvSink(directory)
        return TensorBoardSink(directory)
    return CsvSink(directory)


class LoggingReporter:
    """Passes progress on to ``inner`` and writes the scalars to ``sink``."""

    def __init__(
        self, inner: Reporter, sink: ScalarSink, epochs_before: int = 0, steps_before: int = 0
    ) -> None:
        self.inner, self.sink = inner, sink
        self.epochs, self.steps, self.epoch_start = epochs_before, steps_before, steps_before
        self.stage = ""

    def stage_started(self, stage: Stage, trainable_parameters: int) -> None:
        self.stage = stage.name
        self.inner.stage_started(stage, trainable_parameters)

    def epoch_started(self, stage: Stage, epoch: int, batches: int) -> None:
        self.epoch_start = self.steps
        self.inner.epoch_started(stage, epoch, batches)

    def step(self, batches_done: int, loss: float, tokens: int) -> None:
        self.steps = self.epoch_start + batches_done
        self.sink.add(f"{self.stage}/running_loss", loss, self.steps)
        self.inner.step(batches_done, loss, tokens)

    def epoch_finished(self, stage: Stage, record: EpochRecord) -> None:
        self.epochs += 1
        for name in ("train_loss", "valid_loss", "valid_perplexity", "valid_rating_mse", "tokens_per_second"):
            value = getattr(record, name)
            if value is not None:
                self.sink.add(f"{stage.name}/{name}", value, self.epochs)
        self.inner.epoch_finished(stage, record)


def move_logs(out: Path, run_directory: Path) -> None:
    """The training's logs into the run being written (``logs/``)."""
    source = logs_dir(out)
    if source.is_dir():
        shutil.copytree(source, run_directory / LOG_DIR)
