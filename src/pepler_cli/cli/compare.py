"""`pepler compare`: runs (or scores files) side by side in the paper's table layout, best values marked."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pepler_cli.cli.common import report_errors, tell

if TYPE_CHECKING:
    from rich.table import Table


class OutputFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    latex = "latex"


@report_errors
def compare_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_OR_SCORES",
            help="Run directories (their manifest's recorded scores, one row per entry) and/or scores YAML "
            "files written by `pepler score`.",
            show_default=False,
        ),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            help="Which of a run's recorded scores to show, e.g. 'split 1 test' or 'split 1 test, beam 4'. "
            "Default: every entry, one row each. Scores files are always shown.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table: a table on stdout with the best values in bold green; markdown: best values in "
            "**bold**; csv: numbers rounded as in the paper, empty cells for missing metrics; json: a list "
            "of rows with every metric unrounded and the metrics each row is best at; latex: a booktabs table.",
            case_sensitive=False,
        ),
    ] = OutputFormat.table,
    all_metrics: Annotated[
        bool,
        typer.Option(
            "--all-metrics",
            help="Also show USN, ROUGE-1/2 precision and recall, ROUGE-L and the metrics beyond the paper that "
            "the rows have (pepler score --metrics), not only the paper's columns.",
        ),
    ] = False,
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            metavar="KEY",
            help="Fold runs that differ only in this training option (repeatable; e.g. split, seed) into one "
            "row of mean ± standard deviation.",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            metavar="RUN",
            help="With --group-by: mark each mean by Student's t-test against the group of this run (paired "
            "over the grouped values when they match, else Welch's): ** p < 0.01, * p < 0.05.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="GROUPING",
            help="One row per group of predictions that `pepler score --by GROUPING` recorded (user-activity, "
            "item-popularity, rating, sentiment; cold-start for predictions with cold pairs).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare runs side by side with the paper's metrics, best value of each column marked.

    Columns: name, prompt, strategy, rating head, backbone, then BLEU-1, BLEU-4, USR, FMR, FCR, DIV, R1-F,
    R2-F (the paper's order) and RMSE, MAE when a row has them. Lower is better for DIV, RMSE and MAE,
    higher for the rest; ties are all marked; a missing value shows as '-'.

    A row generated with a feature hint shows it after its name. A row that read the test record's own
    feature (--feature-hint given) is an upper bound: marked †, named in a warning on stderr when other rows
    did not read it, never marked best over them and, with --baseline, t-tested only against a baseline that
    read it too.
    """
    from pepler_cli.evaluation.compare import render_comparison

    notes: list[str] = []
    rendered = render_comparison(
        paths, output_format.value, key, all_metrics, group_by or (), baseline, by, notes
    )
    for note in notes:
        tell(note)
    if isinstance(rendered, str):
        typer.echo(rendered, nl=False)
    else:
        _print_table(rendered)


def _print_table(table: Table) -> None:
    """The table at its natural width: where the terminal is narrower, rich would squeeze the numbers into
    ellipses, so the table is then printed whole and the terminal wraps its lines instead."""
    from rich.console import Console
    from rich.measure import Measurement

    from pepler_cli.console import out_console

    natural = Measurement.get(out_console, out_console.options.update_width(100_000), table).maximum
    if natural <= out_console.width:
        out_console.print(table)
        return
    wide = Console(
        file=out_console.file,
        width=natural,
        color_system=out_console.color_system,  # type: ignore[arg-type]
        force_terminal=out_console.is_terminal,
        no_color=out_console.no_color,
    )
    wide.print(table, crop=False)
