"""``pepler train``: options in, library call, progress and a summary out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pepler_cli.cli.common import report_errors
from pepler_cli.config import TrainConfig, help_of


def _help(name: str) -> str:
    return help_of(TrainConfig, name)


@report_errors
def train_command(
    data: Optional[Path] = typer.Option(None, "--data", help=_help("data")),
    split: Optional[int] = typer.Option(None, "--split", help=_help("split")),
    out: Optional[Path] = typer.Option(None, "--out", help=_help("out")),
    prompt: Optional[str] = typer.Option(None, "--prompt", help=_help("prompt")),
    strategy: Optional[str] = typer.Option(None, "--strategy", help=_help("strategy")),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=_help("backbone")),
    backbone_path: Optional[str] = typer.Option(None, "--backbone-path", help=_help("backbone_path")),
    rating_head: Optional[str] = typer.Option(None, "--rating-head", help=_help("rating_head")),
    rating_weight: Optional[float] = typer.Option(None, "--rating-weight", help=_help("rating_weight")),
    learning_rate: Optional[float] = typer.Option(None, "--lr", "--learning-rate", help=_help("learning_rate")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help=_help("batch_size")),
    epochs: Optional[int] = typer.Option(None, "--epochs", help=_help("epochs")),
    patience: Optional[int] = typer.Option(None, "--patience", help=_help("patience")),
    seed: Optional[int] = typer.Option(None, "--seed", help=_help("seed")),
    bucket_by_length: Optional[bool] = typer.Option(
        None, "--bucket-by-length/--no-bucket-by-length", help=_help("bucket_by_length")
    ),
    device: Optional[str] = typer.Option(None, "--device", help=_help("device")),
    precision: Optional[str] = typer.Option(None, "--precision", help=_help("precision")),
    overwrite: bool = typer.Option(False, "--overwrite", help=_help("overwrite")),
    resume: bool = typer.Option(False, "--resume", help=_help("resume")),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="YAML file of options (keys as the flag names); flags given here override it."
    ),
) -> None:
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags["overwrite"] = overwrite or None  # unset flags leave a config file's value alone
    flags["resume"] = resume or None

    import shlex
    import sys

    from pepler_cli.cli.progress import TrainingProgress
    from pepler_cli.config import resolve
    from pepler_cli.console import err_console
    from pepler_cli.training.checkpoint import checkpoint_dir
    from pepler_cli.training.run import train_run

    config = resolve(TrainConfig, config_file, flags)
    command = shlex.join(["pepler", *sys.argv[1:]])
    if config.resume and checkpoint_dir(config.out).exists():
        err_console.print(f"resuming from {checkpoint_dir(config.out)}")
    try:
        with TrainingProgress(err_console) as reporter:
            manifest = train_run(config, command, reporter)
    except KeyboardInterrupt:
        checkpoint = checkpoint_dir(config.out)
        if not checkpoint.exists():
            raise  # nothing finished yet: the usual message
        err_console.print(
            f"[bold red]interrupted[/]: the last finished epoch is saved in {checkpoint}; run the same command "
            "with --resume to continue"
        )
        raise typer.Exit(code=130) from None
    for stage in manifest["stages"]:
        err_console.print(
            f"stage [bold]{stage['name']}[/]: best epoch {stage['best_epoch']}, "
            f"validation loss {stage['best_valid_loss']:.4f} ({stage['stopped']})"
        )
    err_console.print(f"[green]run written:[/] {config.out}")
