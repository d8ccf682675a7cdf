"""``pepler plot curves|sweep|bars``: figures of runs and sweeps, as PNG or SVG (by the --out suffix)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pepler_cli.cli.common import report_errors, tell

plot_app = typer.Typer(
    name="plot",
    no_args_is_help=True,
    help="Draw figures: training curves, a metric against a sweep axis, bars.",
)

RUNS = typer.Argument(
    ..., metavar="RUN_OR_SCORES", help="Run directories and/or scores files.", show_default=False
)
OUT = typer.Option(..., "--out", help="The figure to write: FIG.png or FIG.svg.")
KEY = typer.Option(None, "--key", help="Which recorded scores of each run, e.g. 'split 1 test'.")


@plot_app.command("curves")
@report_errors
def curves_command(run: Path = typer.Argument(..., help="Run directory."), out: Path = OUT) -> None:
    """A run's loss and perplexity per epoch, its stages and their best epochs marked."""
    from pepler_cli.plots import plot_curves

    tell(f"wrote {plot_curves(run, out)['out']}")


@plot_app.command("sweep")
@report_errors
def sweep_command(
    paths: Annotated[list[Path], RUNS],
    x: str = typer.Option(
        ..., "--x", help="The swept training option on the x axis (learning-rate, rating-weight)."
    ),
    metric: str = typer.Option(..., "--metric", help="The metric on the y axis (bleu_4, rmse, usr, fcr, …)."),
    lines: str | None = typer.Option(None, "--lines", help="One line per value of this option (strategy)."),
    out: Path = OUT,
    key: str | None = KEY,
) -> None:
    """A metric against a swept option, one line per value of another, error bars over the rest (splits)."""
    from pepler_cli.plots import plot_sweep

    tell(f"wrote {plot_sweep(paths, x, metric, out, lines, key)['out']}")


@plot_app.command("bars")
@report_errors
def bars_command(
    paths: Annotated[list[Path], RUNS],
    metric: str = typer.Option(..., "--metric", help="The metric to compare."),
    group_by: list[str] | None = typer.Option(None, "--group-by", help="Fold runs differing only in this."),
    out: Path = OUT,
    key: str | None = KEY,
) -> None:
    """A bar chart of a comparison: one bar per run, or per group with its standard deviation."""
    from pepler_cli.plots import plot_bars

    tell(f"wrote {plot_bars(paths, metric, out, group_by or (), key)['out']}")
