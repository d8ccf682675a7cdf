"""``pepler generate``: a trained run explains a split's (user, item) pairs into preds.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pepler_cli.cli.common import report_errors
from pepler_cli.config import GenerateConfig, help_of


def _help(name: str) -> str:
    return help_of(GenerateConfig, name)


@report_errors
def generate_command(
    run: Path = typer.Argument(..., help=_help("run")),
    data: Optional[Path] = typer.Option(None, "--data", help=_help("data")),
    split: Optional[str] = typer.Option(None, "--split", help=_help("split")),
    split_number: Optional[int] = typer.Option(None, "--split-number", help=_help("split_number")),
    out: Optional[Path] = typer.Option(None, "--out", help=_help("out")),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help=_help("max_tokens")),
    decoding: Optional[str] = typer.Option(None, "--decoding", help=_help("decoding")),
    beams: Optional[int] = typer.Option(None, "--beams", help=_help("beams")),
    top_k: Optional[int] = typer.Option(None, "--top-k", help=_help("top_k")),
    top_p: Optional[float] = typer.Option(None, "--top-p", help=_help("top_p")),
    temperature: Optional[float] = typer.Option(None, "--temperature", help=_help("temperature")),
    seed: Optional[int] = typer.Option(None, "--seed", help=_help("seed")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help=_help("batch_size")),
    limit: Optional[int] = typer.Option(None, "--limit", help=_help("limit")),
    device: Optional[str] = typer.Option(None, "--device", help=_help("device")),
    overwrite: bool = typer.Option(False, "--overwrite", help=_help("overwrite")),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="YAML file of options (keys as the flag names); flags given here override it."
    ),
) -> None:
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags["overwrite"] = overwrite or None

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pepler_cli.config import resolve
    from pepler_cli.console import err_console
    from pepler_cli.explain import generate_predictions

    config = resolve(GenerateConfig, config_file, flags)
    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("generate", total=None)
        summary = generate_predictions(config, lambda done, total: bar.update(task, completed=done, total=total))
    err_console.print(
        f"[green]{summary['predictions']} explanations written:[/] {summary['out']} "
        f"(split {summary['split_number']}, {summary['split']})"
    )
