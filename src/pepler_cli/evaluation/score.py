"""``pepler score`` as a library call: predictions and a feature set in; scores (the paper's, those
``--metrics`` adds, per group of ``--by``), a scores file and (when the predictions' sidecar names their run) an
entry in the run's manifest out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepler_cli.config import ScoreConfig
from pepler_cli.data.prepared.layout import feature_file
from pepler_cli.data.prepared.reading import load_prepared, read_manifest, read_rating_range
from pepler_cli.data.prepared.records import PreparedDataset
from pepler_cli.data.splits import KnownIds, keep_known_pairs
from pepler_cli.errors import PeplerError
from pepler_cli.evaluation import beyond
from pepler_cli.evaluation.breakdown import COLD_START, Breakdown, break_down, labels_for
from pepler_cli.evaluation.catalogue import Metric, needing, select_beyond
from pepler_cli.evaluation.provenance import Link, link_predictions, run_entry
from pepler_cli.evaluation.scores_file import default_scores_path, scores_document, write_scores_file
from pepler_cli.evaluation.scoring import PaperPairs, normalize_all
from pepler_cli.evaluation.training_view import TrainingView
from pepler_cli.files import read_user_text, sha256_file
from pepler_cli.predictions import Prediction, read_predictions
from pepler_cli.runs import ITEMS, MANIFEST, USERS, record_scores
from pepler_cli.runs import read_manifest as read_run_manifest


@dataclass
class ScoreResult:
    scores: dict[str, float]
    out: Path  # the scores file written
    notes: list[str] = field(default_factory=list)  # for the person at the terminal
    recorded_in: Path | None = None  # the run manifest that now holds the scores
    key: str | None = None  # under which key
    feature_hint: dict[str, Any] | None = None  # the sidecar's feature_hint; None when not linked to one
    breakdowns: list[Breakdown] = field(default_factory=list)  # --by, and cold against warm


@dataclass
class Context:
    """What the predictions were made from, as far as the scores need it."""

    dataset: PreparedDataset | None = None
    training: TrainingView | None = None  # the training part of the predictions' split


def score(config: ScoreConfig) -> ScoreResult:
    """Score ``config.predictions`` with the paper's metrics (and those ``config.metrics`` adds, per group of
    ``config.by``); write the scores file; record them in the run."""
    if config.data is not None and not config.data.is_dir():
        raise PeplerError(f"{config.data}: no such dataset directory")
    feature_path = feature_file(config.data) if config.data is not None else config.features
    assert feature_path is not None  # ScoreConfig requires exactly one of data/features
    predictions = read_predictions(config.predictions)
    feature_set = read_feature_set(feature_path)
    metrics = select_beyond(config.metrics)  # an unknown name fails before any work
    notes: list[str] = []
    predictions_sha256 = sha256_file(config.predictions)
    linked = link_predictions(config.predictions, predictions_sha256)
    predictions, skipped = drop_unknown(config, predictions, linked.link, notes)
    clip_range, range_source = rating_range(predictions, config, notes)
    context = _context(config, metrics, linked.link, notes)
    unscored = _unscorable(predictions, notes)
    metrics = tuple(m for m in metrics if m.key not in unscored)
    chosen = beyond.plan(metrics, feature_set, context.training, notes, config.device)

    references = normalize_all([p.reference or "" for p in predictions])
    generated = normalize_all([p.generated for p in predictions])
    paper = PaperPairs(predictions, feature_set, clip_range, references, generated)
    extra = beyond.BeyondPairs(predictions, chosen, references, generated)

    def score_rows(rows: Sequence[int] | None = None) -> dict[str, float]:
        scores = {**paper.scores(rows), **extra.scores(rows)}
        return {key: value for key, value in scores.items() if key not in unscored}

    scores = score_rows()
    breakdowns = _breakdowns(config, predictions, context, score_rows)
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
    if skipped:
        document["skipped_unknown"] = skipped
    document.update(_extras(config, chosen, context, breakdowns))
    write_scores_file(out, document)
    result = ScoreResult(scores, out, notes, breakdowns=breakdowns)
    result.feature_hint = linked.link.feature_hint if linked.link is not None else None
    if linked.link is not None and config.record:
        entry = run_entry(scores, config.predictions, predictions_sha256, out, linked.link.feature_hint)
        if breakdowns:
            entry["groups"] = {b.by: b.to_yaml() for b in breakdowns}
        run_path = Path(linked.link.run["path"])
        not_recorded = record_scores(run_path, linked.link.key, entry, linked.link.run.get("name"))
        if not_recorded is None:
            result.recorded_in, result.key = run_path / MANIFEST, linked.link.key
        else:
            notes.append(not_recorded)
    return result


def _unscorable(predictions: Sequence[Prediction], notes: list[str]) -> frozenset[str]:
    """The keys of the metrics that need what some predictions lack (a pairs file's predictions may have no
    reference or feature), each lack said in a note."""
    missing: set[str] = set()
    for name in ("reference", "feature"):
        lacking = sum(getattr(p, name) is None for p in predictions)
        if lacking:
            missing.add(name)
            labels = ", ".join(m.label for m in needing({name}))
            notes.append(
                f"note: {lacking} of {len(predictions)} predictions have no {name}: {labels} need one for every "
                "prediction and are not scored"
            )
    return frozenset(m.key for m in needing(missing))


def _context(config: ScoreConfig, metrics: Sequence[Metric], link: Link | None, notes: list[str]) -> Context:
    """The prepared dataset and the training part of the predictions' split, read only when a metric or
    a grouping asked for them."""
    needs_training = bool(beyond.NEEDS_TRAINING.intersection(m.key for m in metrics)) or any(
        by in ("user-activity", "item-popularity") for by in config.by
    )
    if config.data is None or not (needs_training or "sentiment" in config.by):
        return Context()
    dataset = load_prepared(config.data)
    split_number = config.split_number
    if split_number is None and link is not None:
        made_from = link.generation.get("dataset") or {}
        if made_from.get("fingerprint") == dataset.fingerprint:
            split_number = made_from.get("split_number")
        elif needs_training:
            notes.append(
                f"note: the predictions were made from another dataset than {config.data} (fingerprints "
                "differ): pass --split-number N to measure against a split of it"
            )
    if split_number is None or not needs_training:
        return Context(dataset)
    if split_number not in dataset.splits:
        known = ", ".join(str(k) for k in sorted(dataset.splits))
        raise PeplerError(f"--split-number {split_number}: {config.data} has splits {known}", exit_code=2)
    return Context(dataset, TrainingView.of(dataset, int(split_number)))


def _breakdowns(
    config: ScoreConfig,
    predictions: list[Prediction],
    context: Context,
    score_rows: Callable[[Sequence[int]], dict[str, float]],
) -> list[Breakdown]:
    """The predictions scored per group of each ``--by``, then cold against warm when any pair is cold."""
    sentiments = None
    if "sentiment" in config.by:
        if context.dataset is None:
            raise PeplerError("--by sentiment: needs --data DIR, the dataset that records the sentiments")
        sentiments = {(r.user, r.item): r.sentiment for r in context.dataset.records}
    groupings = [*config.by, *([COLD_START] if any(p.cold for p in predictions) else [])]
    return [
        break_down(by, labels_for(by, predictions, context.training, sentiments), score_rows)
        for by in groupings
    ]


def _extras(
    config: ScoreConfig, chosen: beyond.Plan, context: Context, breakdowns: list[Breakdown]
) -> dict[str, Any]:
    """What the scores file adds when more than the paper's metrics were asked for."""
    extras: dict[str, Any] = {}
    if config.metrics != "paper":
        extras["metrics"] = config.metrics
    if context.training is not None:
        extras["training_split"] = context.training.split_number
    if chosen.models:
        extras["models"] = chosen.models
    if breakdowns:
        extras["groups"] = {b.by: b.to_yaml() for b in breakdowns}
    return extras


def drop_unknown(
    config: ScoreConfig, predictions: list[Prediction], link: Link | None, notes: list[str]
) -> tuple[list[Prediction], int]:
    """The predictions whose user and item the run that made them has trained, and how many were left out;
    with ``--unknown error`` (the default) any other is a one-line error. Nothing is checked when nothing
    tells what the run has seen (no sidecar naming a run, or the run is gone)."""
    known = known_ids(config, link)
    if known is None:
        return predictions, 0
    # A pair marked cold was explained on purpose by `generate --cold-start`: it is scored, known or not.
    checked = [p for p in predictions if not p.cold]
    kept_ids = {
        id(p)
        for p in keep_known_pairs(
            checked,
            [p.user for p in checked],
            [p.item for p in checked],
            known,
            unknown=config.unknown,
            where=config.predictions,
            what="predictions",
            purpose="score",
        )
    }
    kept = [p for p in predictions if p.cold or id(p) in kept_ids]
    skipped = len(predictions) - len(kept)
    if skipped:
        notes.append(
            f"note: skipped {skipped} of {len(predictions)} predictions whose user or item {known.unknown_to} "
            "(--unknown skip)"
        )
    return kept, skipped


def known_ids(config: ScoreConfig, link: Link | None) -> KnownIds | None:
    """The users and items the run behind the predictions has trained, and how to say what the others are.

    The predictions' sidecar names the run. Its manifest names the dataset (fingerprint) and split it was
    trained on: when ``--data`` is that dataset, known means in that split's training part (exactly what
    ``generate`` checks). Otherwise known means having a vector in the run (its users.txt and items.txt),
    which is all the run itself can tell. None when there is no run to ask.
    """
    if link is None:
        return None
    run_path = Path(link.run["path"])
    try:
        manifest = read_run_manifest(run_path)
    except PeplerError:
        return None  # moved or deleted: the scores still stand, record_scores says the run is gone
    trained_on = manifest.get("dataset") if isinstance(manifest.get("dataset"), dict) else {}
    fingerprint, split = trained_on.get("fingerprint"), trained_on.get("split")
    if config.data is not None and fingerprint and _dataset_fingerprint(config.data) == fingerprint:
        dataset = load_prepared(config.data)
        if split in dataset.splits:
            users, items = dataset.training_ids(split)
            return KnownIds(
                users, items, f"the run never saw in training ({config.data}, split {split}, train)"
            )
    users_file, items_file = run_path / USERS, run_path / ITEMS
    if not (users_file.is_file() and items_file.is_file()):
        return None
    users = set(read_user_text(users_file, "list of user ids").splitlines())
    items = set(read_user_text(items_file, "list of item ids").splitlines())
    return KnownIds(users, items, f"that the run has no vector for ({run_path}: {USERS}, {ITEMS})")


def _dataset_fingerprint(data: Path) -> str | None:
    try:
        return read_manifest(data).get("fingerprint")
    except PeplerError:
        return None  # not a whole prepared dataset (a feature set and a rating range serve score too)


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
