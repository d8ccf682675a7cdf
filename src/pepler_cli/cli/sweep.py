"""``pepler sweep``: a grid of training options trained, generated, scored and compared in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli.common import flag, report_errors, tell


@report_errors
def sweep_command(
    sweep_file: Path = typer.Argument(
        ..., metavar="SWEEP.yaml", help="The sweep: dataset, grid, shared options."
    ),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Cells at once, each on its own CUDA device."),
    cell: str | None = flag("--cell", help="Run only this cell (by its name, as the sweep prints it)."),
) -> None:
    """Expand the sweep's grid (any training option: split, learning rate, strategy, λ, backbone, seed) into
    runs; train, generate and score each, skipping cells already scored (re-running resumes a sweep); write
    one comparison (comparison.md, comparison.json) folded by the sweep's group-by."""
    from pepler_cli.sweep import run_sweep

    result = run_sweep(sweep_file, jobs, tell, cell)
    tell(
        f"{result.cells} cells: {len(result.trained)} run, {len(result.skipped)} already finished; "
        f"comparison: {result.comparison}"
    )
