"""Progress on stderr: bars for prepare and generate; for training a bar per epoch and a line per epoch."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pepler_cli.console import err_console

if TYPE_CHECKING:
    from pepler_cli.strategies import Stage
    from pepler_cli.training.loop import EpochRecord


def bars() -> Progress:
    """A display with one bar per slow step (prepare's reading, extraction, truncation, writing)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    return Progress(*columns, console=err_console)


def counter(label: str) -> Progress:
    """A transient bar of examples done out of all, with the time left."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err_console, transient=True)


class TrainingProgress:
    """Implements the training loop's Reporter protocol on a rich console (stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]:.3f}  ppl {task.fields[ppl]:.1f}  {task.fields[tps]:,.0f} tok/s"
            ),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: int | None = None
        self.last_time = time.perf_counter()

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def stage_started(self, stage: Stage, trainable_parameters: int) -> None:
        self.console.print(
            f"[bold]stage {stage.name}[/]: training {', '.join(stage.trains)} ({trainable_parameters:,} parameters)"
        )

    def epoch_started(self, stage: Stage, epoch: int, batches: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            f"{stage.name} epoch {epoch}", total=batches, loss=math.nan, ppl=math.nan, tps=0.0
        )
        self.last_time = time.perf_counter()

    def step(self, batches_done: int, loss: float, tokens: int) -> None:
        now = time.perf_counter()
        tokens_per_second = tokens / max(now - self.last_time, 1e-9)
        self.last_time = now
        ppl = math.exp(min(loss, 50.0))
        if self.task is not None:
            self.progress.update(self.task, completed=batches_done, loss=loss, ppl=ppl, tps=tokens_per_second)

    def epoch_finished(self, stage: Stage, record: EpochRecord) -> None:
        mark = "[green]*[/]" if record.improved else " "
        rating = f"  rating MSE {record.valid_rating_mse:.4f}" if record.valid_rating_mse is not None else ""
        self.console.print(
            f"{mark} {stage.name} epoch {record.epoch:3d}  train loss {record.train_loss:.4f}  "
            f"valid loss {record.valid_loss:.4f}  ppl {record.valid_perplexity:.2f}{rating}  "
            f"{record.tokens_per_second:,.0f} tok/s  {record.seconds:.1f}s"
        )


def training_display() -> contextlib.AbstractContextManager:
    """The training's progress bars; under torchrun only rank 0 shows them (the others report to nobody)."""
    from pepler_cli.distributed import launched_world
    from pepler_cli.training.loop import SilentReporter

    return (
        TrainingProgress(err_console)
        if launched_world().is_main
        else contextlib.nullcontext(SilentReporter())
    )


@contextlib.contextmanager
def say_how_to_resume(out: Path, resuming: bool) -> Iterator[None]:
    """Say when training resumes, and after a Ctrl-C that got through, where the checkpoint is (exit 130)."""
    from pepler_cli.distributed import launched_world
    from pepler_cli.training.checkpoint import checkpoint_dir

    checkpoint = checkpoint_dir(out)
    if resuming and checkpoint.exists() and launched_world().is_main:
        err_console.print(f"resuming from {checkpoint}")
    try:
        yield
    except KeyboardInterrupt:
        if not checkpoint.exists():
            raise  # nothing finished yet: the usual message
        err_console.print(
            f"[bold red]interrupted[/]: the last checkpoint is in {checkpoint}; run the same command with "
            "--resume to continue"
        )
        raise typer.Exit(code=130) from None


def training_summary(manifest: dict[str, Any], out: Path) -> None:
    """Each stage's best epoch and the run's place (rank 0 only under torchrun)."""
    from pepler_cli.distributed import launched_world

    if not launched_world().is_main:
        return
    for stage in manifest["stages"]:
        err_console.print(
            f"stage [bold]{stage['name']}[/]: best epoch {stage['best_epoch']}, "
            f"validation loss {stage['best_valid_loss']:.4f} ({stage['stopped']})"
        )
    err_console.print(f"[green]run written:[/] {out}")
