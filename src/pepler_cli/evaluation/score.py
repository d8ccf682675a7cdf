"""``pepler score`` as a library call: predictions and a feature set in; scores, a scores file and (when the
predictions' sidecar names their run) an entry in the run's manifest out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepler_cli.config import ScoreConfig
from pepler_cli.data.prepared import feature_file, read_rating_range
from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.provenance import link_predictions, run_entry
from pepler_cli.evaluation.scores_file import default_scores_path, scores_document, write_scores_file
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.files import read_user_text, sha256_file
from pepler_cli.predictions import Prediction, read_predictions
from pepler_cli.runs import MANIFEST, record_scores


@dataclass
class ScoreResult:
    scores: dict[str, float]
    out: Path  # the scores file written
    notes: list[str] = field(default_factory=list)  # for the person at the terminal
    recorded_in: Path | None = None  # the run manifest that now holds the scores
    key: str | None = None  # under which key


def score(config: ScoreConfig) -> ScoreResult:
    """Score ``config.predictions`` with the paper's metrics; write the scores file; record them in the run."""
    if config.data is not None and not config.data.is_dir():
        raise PeplerError(f"{config.data}: no such dataset directory")
    feature_path = feature_file(config.data) if config.data is not None else config.features
    assert feature_path is not None  # ScoreConfig requires exactly one of data/features
    predictions = read_predictions(config.predictions)
    feature_set = read_feature_set(feature_path)
    notes: list[str] = []
    clip_range, range_source = rating_range(predictions, config, notes)
    scores = score_predictions(predictions, feature_set, clip_range)

    predictions_sha256 = sha256_file(config.predictions)
    linked = link_predictions(config.predictions, predictions_sha256)
    notes.extend(linked.notes)
    features_used = {
        "source": "data" if config.data else "file",
        "path": str(feature_path),
        "count": len(feature_set),
    }
    range_used = (
        None if clip_range is None else {"min": clip_range[0], "max": clip_range[1], "source": range_source}
    )
    out = config.out if config.out is not None else default_scores_path(config.predictions)
    document = scores_document(
        config.predictions, predictions_sha256, scores, features_used, range_used, linked.link
    )
    write_scores_file(out, document)
    result = ScoreResult(scores, out, notes)
    if linked.link is not None and config.record:
        entry = run_entry(scores, config.predictions, predictions_sha256, out)
        run_path = Path(linked.link.run["path"])
        not_recorded = record_scores(run_path, linked.link.key, entry, linked.link.run.get("name"))
        if not_recorded is None:
            result.recorded_in, result.key = run_path / MANIFEST, linked.link.key
        else:
            notes.append(not_recorded)
    return result


def read_feature_set(path: Path) -> set[str]:
    """The features of ``path``, one a line; blank lines are ignored."""
    lines = read_user_text(path, "feature file").split("\n")
    feature_set = {line.strip() for line in lines} - {""}
    if not feature_set:
        raise PeplerError(f"{path}: contains no features")
    return feature_set


def rating_range(
    predictions: list[Prediction], config: ScoreConfig, notes: list[str]
) -> tuple[tuple[float, float] | None, str | None]:
    """The range predicted ratings are clipped into and where it came from; None if RMSE/MAE are skipped.

    The paper clips into the whole dataset's range: the option's, else the prepared dataset's, else (with a
    note, since the test split's range may be narrower) the range of the reference ratings.
    """
    unrated = sum(p.rating is None or p.predicted_rating is None for p in predictions)
    if unrated:
        # Silence when no prediction has a predicted rating: that is a model without a rating head (its
        # predictions still carry the true rating), not a mistake.
        if any(p.predicted_rating is not None for p in predictions):
            notes.append(
                f"note: RMSE/MAE skipped: {unrated} of {len(predictions)} predictions lack one of the ratings"
            )
        return None, None
    if config.rating_range is not None:
        return (float(config.rating_range[0]), float(config.rating_range[1])), "option"
    if config.data is not None:
        return read_rating_range(config.data), "manifest"
    ratings: list[Any] = [p.rating for p in predictions]
    low, high = min(ratings), max(ratings)
    notes.append(
        f"note: clipping predicted ratings into [{low:g}, {high:g}], the range of the reference ratings; "
        "pass --rating-range MIN MAX or --data DIR for the whole dataset's range"
    )
    return (low, high), "references"
