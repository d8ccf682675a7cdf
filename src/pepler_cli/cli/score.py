"""`pepler score`: the paper's metrics for a preds.jsonl, as a table or JSON, saved next to it as YAML.

Only typer, the standard library and pepler's tiny error module are imported at the top: the metrics pull
in rouge-score (nltk, numpy), which `pepler --help` must not pay for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pepler_cli.cli.common import report_errors
from pepler_cli.errors import PeplerError, UsageError

if TYPE_CHECKING:
    from pepler_cli.predictions import Prediction
    from pepler_cli.scores import Link

# (key, label as in the paper's tables, what it means, how many decimals) in the paper's column order.
_ROWS: tuple[tuple[str, str, str, int], ...] = (
    ("fmr", "FMR", "feature matching ratio ↑", 4),
    ("fcr", "FCR", "feature coverage ratio ↑", 4),
    ("div", "DIV", "feature diversity ↓", 3),
    ("usr", "USR", "unique sentence ratio ↑", 4),
    ("usn", "USN", "unique sentences ↑", 0),
    ("bleu_1", "BLEU-1", "corpus BLEU-1 ×100 ↑", 2),
    ("bleu_4", "BLEU-4", "corpus BLEU-4 ×100 ↑", 2),
    ("rouge_1_precision", "R1-P", "ROUGE-1 precision ×100 ↑", 2),
    ("rouge_1_recall", "R1-R", "ROUGE-1 recall ×100 ↑", 2),
    ("rouge_1_f", "R1-F", "ROUGE-1 F ×100 ↑", 2),
    ("rouge_2_precision", "R2-P", "ROUGE-2 precision ×100 ↑", 2),
    ("rouge_2_recall", "R2-R", "ROUGE-2 recall ×100 ↑", 2),
    ("rouge_2_f", "R2-F", "ROUGE-2 F ×100 ↑", 2),
    ("rouge_l_precision", "RL-P", "ROUGE-L precision ×100 ↑", 2),
    ("rouge_l_recall", "RL-R", "ROUGE-L recall ×100 ↑", 2),
    ("rouge_l_f", "RL-F", "ROUGE-L F (β = P/R) ×100 ↑", 2),
    ("rmse", "RMSE", "rating root mean squared error ↓", 4),
    ("mae", "MAE", "rating mean absolute error ↓", 4),
)
_GROUPS = {"fmr": "Explainability", "bleu_1": "Text quality", "rmse": "Rating"}


@report_errors
def score_command(
    predictions: Annotated[
        Path,
        typer.Argument(
            metavar="PREDICTIONS", help="preds.jsonl written by `pepler generate`.", show_default=False
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Prepared dataset: its features.txt is the feature set and manifest.yaml's rating_range "
            "clips predicted ratings. Give this or --features.",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            metavar="FILE",
            help="Feature set, one feature a line, instead of --data.",
            show_default=False,
        ),
    ] = None,
    rating_range: Annotated[
        tuple[float, float] | None,
        typer.Option(
            "--rating-range",
            metavar="MIN MAX",
            help="Clip predicted ratings into [MIN, MAX] for RMSE/MAE. Default: the manifest's rating_range "
            "with --data, else the lowest and highest reference rating in PREDICTIONS.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scores as one JSON object on stdout instead of a table.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Where to write the scores YAML. Default: next to PREDICTIONS, as <name>.scores.yaml.",
            show_default=False,
        ),
    ] = None,
    no_record: Annotated[
        bool,
        typer.Option(
            "--no-record",
            help="Do not record the scores in the run's manifest.yaml (they still link to the run in the "
            "scores YAML).",
        ),
    ] = False,
) -> None:
    """Score generated explanations (and ratings) with the paper's metrics.

    BLEU-1/4, ROUGE-1/2/L (×100), USR, FMR, FCR, DIV and, with ratings, RMSE and MAE, as in the paper.

    The scores are also written as YAML next to PREDICTIONS (see --out). When `pepler generate` left
    <name>.meta.yaml beside PREDICTIONS and it matches them, the scores name the run and the decoding, and
    are recorded in the run's manifest.yaml under `scores:` (see --no-record) for `pepler compare`.
    """
    if (data is None) == (features is None):
        raise UsageError("give exactly one of --data DIR or --features FILE")
    if rating_range is not None and rating_range[0] > rating_range[1]:
        raise UsageError(f"--rating-range: MIN ({rating_range[0]:g}) is above MAX ({rating_range[1]:g})")

    if data is not None and not data.is_dir():
        raise PeplerError(f"{data}: no such dataset directory")
    feature_path = data / "features.txt" if data is not None else features
    assert feature_path is not None  # exactly one of --data/--features was given

    from pepler_cli.fsutil import sha256_file
    from pepler_cli.metrics.report import score_predictions
    from pepler_cli.predictions import read_predictions
    from pepler_cli.scores import link_predictions, record_in_run, run_entry

    loaded = read_predictions(predictions)
    feature_set = read_feature_set(feature_path)
    clip_range, range_source = _rating_range(loaded, data, rating_range)
    scores = score_predictions(loaded, feature_set, clip_range)

    features_used = {
        "source": "data" if data else "file",
        "path": str(feature_path),
        "count": len(feature_set),
    }
    rating_used = (
        None if clip_range is None else {"min": clip_range[0], "max": clip_range[1], "source": range_source}
    )
    predictions_sha256 = sha256_file(predictions)
    linked = link_predictions(predictions, predictions_sha256)
    for note in linked.notes:
        _tell(note)
    document = _scores_document(
        predictions, predictions_sha256, scores, features_used, rating_used, linked.link
    )
    out_path = out if out is not None else default_scores_path(predictions)
    _write_yaml(out_path, document)

    recorded = None
    if linked.link is not None and not no_record:
        entry = run_entry(scores, predictions, predictions_sha256, out_path)
        run_path = Path(linked.link.run["path"])
        not_recorded = record_in_run(run_path, linked.link.key, entry, linked.link.run.get("name"))
        if not_recorded is None:
            recorded = f"recorded the scores in {run_path / 'manifest.yaml'} as {linked.link.key!r}"
        else:
            _tell(not_recorded)

    if as_json:
        import json

        typer.echo(json.dumps(scores, indent=2))
    else:
        _print_table(predictions, scores)
    _tell(f"wrote {out_path}")
    if recorded:
        _tell(recorded)


def default_scores_path(predictions: Path) -> Path:
    """preds.jsonl -> preds.scores.yaml, in the same folder."""
    name = predictions.name.removesuffix(".jsonl")
    return predictions.with_name(f"{name}.scores.yaml")


def read_feature_set(path: Path) -> set[str]:
    """The features of ``path``, one a line; blank lines are ignored."""
    from pepler_cli.fsutil import read_user_text

    lines = read_user_text(path, "feature file").split("\n")
    feature_set = {line.strip() for line in lines} - {""}
    if not feature_set:
        raise PeplerError(f"{path}: contains no features")
    return feature_set


def read_manifest_rating_range(path: Path) -> tuple[float, float]:
    """``rating_range: [min, max]`` from a prepared dataset's manifest.yaml."""
    import yaml

    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PeplerError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise PeplerError(f"{path}: cannot read the manifest ({' '.join(str(error).split())})") from None
    value = manifest.get("rating_range") if isinstance(manifest, dict) else None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
    ):
        # No square brackets in the message: the error printer reads them as rich markup.
        raise PeplerError(f"{path}: key 'rating_range' must be two numbers, min then max, got {value!r}")
    return float(value[0]), float(value[1])


def _rating_range(
    predictions: list[Prediction], data: Path | None, given: tuple[float, float] | None
) -> tuple[tuple[float, float] | None, str | None]:
    """The range predicted ratings are clipped into and where it came from; None if RMSE/MAE are skipped."""
    unrated = sum(p.rating is None or p.predicted_rating is None for p in predictions)
    if unrated:
        # Silence when no prediction has a predicted rating: that is a model without a rating head (its
        # predictions still carry the true rating), not a mistake.
        if any(p.predicted_rating is not None for p in predictions):
            _tell(
                f"note: RMSE/MAE skipped: {unrated} of {len(predictions)} predictions lack one of the ratings"
            )
        return None, None
    if given is not None:
        return (float(given[0]), float(given[1])), "option"
    if data is not None:
        return read_manifest_rating_range(data / "manifest.yaml"), "manifest"
    ratings = [p.rating for p in predictions if p.rating is not None]
    low, high = min(ratings), max(ratings)
    # The paper clips into the whole dataset's range; the test split's range may be narrower.
    _tell(
        f"note: clipping predicted ratings into [{low:g}, {high:g}], the range of the reference ratings; "
        "pass --rating-range MIN MAX or --data DIR for the whole dataset's range"
    )
    return (low, high), "references"


def _scores_document(
    predictions: Path,
    predictions_sha256: str,
    scores: dict[str, float],
    features: dict[str, Any],
    rating_range: dict[str, Any] | None,
    link: Link | None,
) -> dict[str, Any]:
    """What scores.yaml holds: the scores and everything needed to tell which predictions and settings.

    ``run`` and ``generation`` (from the predictions' meta sidecar) only when the sidecar matches them.
    """
    from pepler_cli import __version__
    from pepler_cli.scores import SCORES_FORMAT

    document: dict[str, Any] = {
        "format": SCORES_FORMAT,
        "pepler_version": __version__,
        "predictions": {"path": str(predictions), "sha256": predictions_sha256},
    }
    if link is not None:
        document["run"] = link.run
        document["generation"] = link.generation
    document.update(
        {
            "n": scores["n"],
            "features": features,
            "rating_range": rating_range,
            "scores": {key: value for key, value in scores.items() if key != "n"},
        }
    )
    return document


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    import yaml

    from pepler_cli.fsutil import atomic_write_text

    try:
        atomic_write_text(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    except OSError as error:
        raise PeplerError(f"{path}: cannot write the scores ({error.strerror})") from None


def _print_table(predictions: Path, scores: dict[str, float]) -> None:
    from rich.table import Table

    from pepler_cli.console import out_console

    table = Table(title=f"{predictions} (n = {scores['n']:g})", title_justify="left")
    table.add_column("group")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, label, meaning, decimals in _ROWS:
        if key in scores:
            # A rule under the last row of each group, as the paper's table separates them.
            end_section = key in ("usn", "rouge_l_f")
            table.add_row(
                _GROUPS.get(key, ""), label, f"{scores[key]:.{decimals}f}", meaning, end_section=end_section
            )
    out_console.print(table)


def _tell(message: str) -> None:
    """A line for the person at the terminal, on stderr so stdout stays parseable."""
    from pepler_cli.console import err_console

    err_console.print(message, highlight=False, soft_wrap=True, markup=False)
