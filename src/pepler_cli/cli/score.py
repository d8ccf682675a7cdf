"""``pepler score``: the paper's metrics for a preds.jsonl, as a table or JSON, saved next to it as YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pepler_cli.cli.common import report_errors, tell

if TYPE_CHECKING:
    from pepler_cli.evaluation.score import ScoreResult


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
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        metavar="paper|all|NAME,…",
        help="Metrics beyond the paper's to add (the paper's are always scored): all (grounding, phrase, "
        "diversity, bias, meaning), or families and metric keys, e.g. grounding,distinct_2,fluency (fluency "
        "loads SmolLM2: only by name). (default: paper)",
        show_default=False,
    ),
    by: list[str] | None = typer.Option(
        None,
        "--by",
        metavar="GROUPING",
        help="Also score each group of predictions: user-activity or item-popularity (quantile buckets of the "
        "user's or item's training records), rating, or sentiment (the record's); with the gap between the best "
        "and the worst group. Repeatable.",
        show_default=False,
    ),
    split_number: int | None = typer.Option(
        None,
        "--split-number",
        metavar="N",
        help="Whose training part the metrics that need one (iFMR, hallucination, popularity, --by activity) "
        "read. Default: the split the predictions' sidecar names.",
        show_default=False,
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        metavar="auto|cpu|cuda",
        help="Where the model-based metrics (meaning, fluency) run. (default: auto)",
        show_default=False,
    ),
) -> None:
    """Score generated explanations (and ratings) with the paper's metrics, and more on request.

    BLEU-1/4, ROUGE-1/2/L (×100), USR, FMR, FCR, DIV and, with ratings, RMSE and MAE, as in the paper.
    --metrics adds grounding (iFMR, feature precision/recall, hallucination), phrase-aware FMR/FCR/DIV,
    diversity (uUSR/iUSR, Distinct-1/2, ENTR-2), popularity bias, meaning (MiniLM cosine, BERTScore) and
    fluency (perplexity); --by scores groups of users, items, ratings or sentiments. Predictions marked cold
    by `pepler generate --cold-start` are also scored cold against warm.

    The scores are also written as YAML next to PREDICTIONS (see --out). When `pepler generate` left
    <name>.meta.yaml beside PREDICTIONS and it matches them, the scores name the run and the decoding, and
    are recorded in the run's manifest.yaml under `scores:` (see --no-record) for `pepler compare`.
    """
    from pepler_cli.config import ScoreConfig, resolve
    from pepler_cli.evaluation.provenance import hint_line
    from pepler_cli.evaluation.score import score

    options = {"predictions": predictions, "data": data, "features": features, "rating_range": rating_range}
    options.update(metrics=metrics, by=by, split_number=split_number, device=device)
    config = resolve(ScoreConfig, None, {**options, "out": out, "record": not no_record, "unknown": unknown})
    result = score(config)
    for note in result.notes:
        tell(note)
    hint = hint_line(result.feature_hint)
    if hint is not None:
        tell(hint)
    if as_json:
        groups = {b.by: b.to_yaml() for b in result.breakdowns}
        typer.echo(json.dumps({**result.scores, **({"groups": groups} if groups else {})}, indent=2))
    else:
        _print_tables(predictions, result)
    tell(f"wrote {result.out}")
    if result.recorded_in is not None:
        tell(f"recorded the scores in {result.recorded_in} as {result.key!r}")


def _print_tables(predictions: Path, result: ScoreResult) -> None:
    from pepler_cli.console import out_console
    from pepler_cli.evaluation.score_tables import score_tables

    for table in score_tables(str(predictions), result.scores, result.breakdowns):
        out_console.print(table)
