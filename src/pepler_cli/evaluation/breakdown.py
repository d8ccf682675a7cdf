"""``pepler score --by``: every metric per group of predictions, and per metric the gap between the best and the
worst group — who gets good explanations.

Groups:

- ``user-activity`` / ``item-popularity``: the user's (item's) number of records in the split's training
  part, cut into :data:`QUANTILE_GROUPS` quantile buckets over the scored predictions (each bucket about as
  many predictions; equal counts never split across buckets, so there may be fewer). 0 counts a user or item
  training never saw.
- ``rating``: the record's rating; ``sentiment``: the record's sentiment in the prepared dataset.
- ``cold-start``: warm pairs against each kind of cold pair (``generate --cold-start`` marks them); scored
  whenever any prediction is marked.

The gap of a metric is best minus worst group value in the metric's own direction (so always ≥ 0), over the
groups where the metric is defined. Metrics that count over the corpus and so change with its size (USR, FCR,
Distinct-n, ENTR-2, Gini: a group of 50 explanations has more distinct bigrams per bigram than one of 500) are
shown per group but get no gap: groups of different sizes cannot be ranked on them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pepler_cli.config import GroupBy
from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.catalogue import BEYOND_METRICS, SCORE_TABLE, Metric
from pepler_cli.evaluation.training_view import TrainingView
from pepler_cli.predictions import Prediction

BY_CHOICES: tuple[str, ...] = get_args(GroupBy)
COLD_START = "cold-start"
QUANTILE_GROUPS = 4
WARM = "warm"


@dataclass
class GroupScores:
    label: str
    n: int
    scores: dict[str, float]


@dataclass
class Breakdown:
    """The scores of one grouping of the predictions, and the best–worst gap of each metric."""

    by: str
    groups: list[GroupScores]
    gaps: dict[str, dict[str, Any]]  # metric -> {"best": label, "worst": label, "gap": value}

    def to_yaml(self) -> dict[str, Any]:
        return {
            "groups": [{"label": g.label, "n": g.n, "scores": g.scores} for g in self.groups],
            "gaps": self.gaps,
        }


def labels_for(
    by: str,
    predictions: Sequence[Prediction],
    training: TrainingView | None,
    sentiments: Mapping[tuple[str, str], int | None] | None = None,
) -> list[str]:
    """The group label of every prediction under ``by`` (one of :data:`BY_CHOICES` or ``cold-start``)."""
    if by == "user-activity" or by == "item-popularity":
        if training is None:
            raise PeplerError(
                f"--by {by}: needs the split's training part (--data DIR of the predictions' dataset, and "
                "--split-number N when the predictions have no sidecar)"
            )
        counts = training.user_counts if by == "user-activity" else training.item_counts
        whose = [p.user for p in predictions] if by == "user-activity" else [p.item for p in predictions]
        return quantile_labels([counts.get(key, 0) for key in whose], "training records")
    if by == "rating":
        return ["rating ?" if p.rating is None else f"rating {p.rating:g}" for p in predictions]
    if by == "sentiment":
        return _sentiment_labels(predictions, sentiments or {})
    if by == COLD_START:
        return [WARM if p.cold is None else f"cold {p.cold}" for p in predictions]
    raise PeplerError(f"--by {by}: choose one of {', '.join(BY_CHOICES)}", exit_code=2)


def _sentiment_labels(
    predictions: Sequence[Prediction], sentiments: Mapping[tuple[str, str], int | None]
) -> list[str]:
    labels = []
    for p in predictions:
        value = sentiments.get((p.user, p.item))
        labels.append("sentiment ?" if value is None else f"sentiment {value:+d}")
    if all(label == "sentiment ?" for label in labels):
        raise PeplerError(
            "--by sentiment: the dataset records no sentiment for these predictions' records "
            "(NETE data carries it; raw reviews prepared by pepler do not)"
        )
    return labels


def quantile_labels(values: Sequence[int], unit: str, groups: int = QUANTILE_GROUPS) -> list[str]:
    """Each value's bucket label, e.g. "training records: 3–5": ``groups`` buckets of about equal size.

    Walking the distinct values upwards, a bucket closes once it holds its share (len(values) / groups) of
    the values; all copies of a value stay in one bucket.
    """
    if not values:
        return []
    counts = Counter(values)
    share = len(values) / groups
    bounds: list[tuple[int, int]] = []
    low: int | None = None
    filled = 0
    for value in sorted(counts):
        low = value if low is None else low
        filled += counts[value]
        if filled >= share * (len(bounds) + 1) or value == max(counts):
            bounds.append((low, value))
            low = None
    label_of = {}
    for lo, hi in bounds:
        label = f"{unit}: {lo}" if lo == hi else f"{unit}: {lo}–{hi}"
        for value in counts:
            if lo <= value <= hi:
                label_of[value] = label
    return [label_of[value] for value in values]


def break_down(
    by: str, labels: Sequence[str], score: Callable[[Sequence[int]], dict[str, float]]
) -> Breakdown:
    """Score each group of predictions (``labels[k]`` is prediction k's group) with ``score`` of the group's
    rows, the groups ordered warm first, then by the number in their label; and the gap of every metric."""
    members: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        members.setdefault(label, []).append(row)
    groups = [
        GroupScores(label, len(members[label]), _without_n(score(members[label])))
        for label in sorted(members, key=_label_order)
    ]
    return Breakdown(by, groups, gaps(groups))


def _without_n(scores: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in scores.items() if key not in ("n", "usn")}


def _label_order(label: str) -> tuple[int, float, str]:
    """Warm before cold, then by the first number in the label (1–2 before 10–40), then alphabetically."""
    if label == WARM:
        return (0, 0.0, label)
    for word in label.replace("–", " ").split():
        try:
            return (1, float(word), label)
        except ValueError:
            continue
    return (2, 0.0, label)


def gaps(groups: Sequence[GroupScores]) -> dict[str, dict[str, Any]]:
    """Per metric: the best and the worst group and the gap between them (needs two groups with it)."""
    result: dict[str, dict[str, Any]] = {}
    for metric in _ranked_metrics():
        having = [(g.scores[metric.key], g.label) for g in groups if metric.key in g.scores]
        if len(having) < 2:
            continue
        ordered = sorted(having, key=lambda pair: pair[0], reverse=not metric.lower_is_better)
        (best, best_label), (worst, worst_label) = ordered[0], ordered[-1]
        result[metric.key] = {"best": best_label, "worst": worst_label, "gap": abs(best - worst)}
    return result


def _ranked_metrics() -> list[Metric]:
    return [m for m in (*SCORE_TABLE, *BEYOND_METRICS) if m.ranked and not m.size_dependent]
