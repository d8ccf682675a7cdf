"""``pepler report``: one self-contained HTML page of runs or a sweep: table, figures, data, explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pepler_cli.cli.common import report_errors, tell


@report_errors
def report_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUNS_OR_SWEEP",
            help="Run directories, scores files, a sweep file or a sweep's output folder.",
            show_default=False,
        ),
    ],
    out: Path = typer.Option(..., "--out", help="The page to write: report.html."),
    group_by: list[str] | None = typer.Option(None, "--group-by", help="Fold runs differing only in this."),
    samples: int = typer.Option(10, "--samples", min=1, help="Explanations shown per run."),
) -> None:
    """Write one HTML file to open in a browser (no network, no external files): the comparison table, each
    run's training curves and a bar chart, the dataset's statistics, and sample explanations beside their
    references with the feature highlighted."""
    from pepler_cli.report import write_report

    written = write_report(paths, out, group_by or (), samples)
    for note in written["notes"]:
        tell(note)
    tell(f"wrote {written['out']} ({len(written['rows'])} rows, {written['figures']} figures)")
