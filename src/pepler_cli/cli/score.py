"""``pepler score``: the paper's metrics for a preds.jsonl, as a table or JSON, saved next to it as YAML."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pepler_cli.cli.common import report_errors, tell


@report_errors
def score_command(
    predictions: Path = typer.Argument(
        ..., metavar="PREDICTIONS", help="preds.jsonl written by `pepler generate`.", show_default=False
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        metavar="DIR",
        help="Prepared dataset: its feature set, and the rating range that clips predicted ratings. Give this or "
        "--features.",
    ),
    features: Path | None = typer.Option(
        None, "--features", metavar="FILE", help="Feature set, one feature a line, instead of --data."
    ),
    rating_range: tuple[float, float] | None = typer.Option(
        None,
        "--rating-range",
        metavar="MIN MAX",
        help="Clip predicted ratings into [MIN, MAX] for RMSE/MAE. Default: the dataset's range with --data, else "
        "the lowest and highest reference rating in PREDICTIONS.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the scores as one JSON object on stdout instead of a table."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        metavar="FILE",
        help="Where to write the scores YAML. Default: next to PREDICTIONS, as <name>.scores.yaml.",
    ),
    unknown: str | None = typer.Option(
        None,
        "--unknown",
        metavar="error|skip",
        help="Predictions whose user or item the run that made them never saw in training (the run named by "
        "<name>.meta.yaml; with --data of the run's dataset, its training part): error (one line naming them) "
        "or skip (score the rest and say how many were left out). (default: error)",
        show_default=False,
    ),
    no_record: bool = typer.Option(
        False,
        "--no-record",
        help="Do not record the scores in the run's manifest.yaml (they still link to the run in the scores YAML).",
    ),
) -> None:
    """Score generated explanations (and ratings) with the paper's metrics.

    BLEU-1/4, ROUGE-1/2/L (×100), USR, FMR, FCR, DIV and, with ratings, RMSE and MAE, as in the paper.

    The scores are also written as YAML next to PREDICTIONS (see --out). When `pepler generate` left
    <name>.meta.yaml beside PREDICTIONS and it matches them, the scores name the run and the decoding, and
    are recorded in the run's manifest.yaml under `scores:` (see --no-record) for `pepler compare`.
    """
    from pepler_cli.config import ScoreConfig, resolve
    from pepler_cli.evaluation.score import score

    options = {"predictions": predictions, "data": data, "features": features, "rating_range": rating_range}
    config = resolve(ScoreConfig, None, {**options, "out": out, "record": not no_record, "unknown": unknown})
    result = score(config)
    for note in result.notes:
        tell(note)
    if as_json:
        typer.echo(json.dumps(result.scores, indent=2))
    else:
        _print_table(predictions, result.scores)
    tell(f"wrote {result.out}")
    if result.recorded_in is not None:
        tell(f"recorded the scores in {result.recorded_in} as {result.key!r}")


def _print_table(predictions: Path, scores: dict[str, float]) -> None:
    from rich.table import Table

    from pepler_cli.console import out_console
    from pepler_cli.evaluation.catalogue import SCORE_TABLE

    table = Table(title=f"{predictions} (n = {scores['n']:g})", title_justify="left")
    for column, justify in (("group", "left"), ("metric", "left"), ("value", "right"), ("meaning", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    shown = [metric for metric in SCORE_TABLE if metric.key in scores]
    for index, metric in enumerate(shown):
        first_of_group = index == 0 or shown[index - 1].group != metric.group
        last_of_group = index == len(shown) - 1 or shown[index + 1].group != metric.group
        table.add_row(
            metric.group if first_of_group else "",
            metric.label,
            metric.format(scores[metric.key]),
            f"{metric.meaning} {metric.arrow}",
            end_section=last_of_group,  # a rule under each group, as the paper's table separates them
        )
    out_console.print(table)
