"""``pepler score``'s tables for the terminal: the paper's metrics, those beyond the paper, and metrics by group
(metrics down, groups across, then the gap and the worst group)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from pepler_cli.evaluation.breakdown import Breakdown
from pepler_cli.evaluation.catalogue import BEYOND_METRICS, SCORE_TABLE, Metric


def score_tables(title: str, scores: dict[str, float], breakdowns: Sequence[Breakdown]) -> list[Table]:
    """The paper's metrics; those beyond the paper, when scored; one table per grouping."""
    tables = [_metric_table(f"{title} (n = {scores['n']:g})", SCORE_TABLE, scores)]
    if any(metric.key in scores for metric in BEYOND_METRICS):
        tables.append(_metric_table("Beyond the paper", BEYOND_METRICS, scores))
    tables.extend(_breakdown_table(breakdown) for breakdown in breakdowns)
    return tables


def _metric_table(title: str, catalogue: Sequence[Metric], scores: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (("group", "left"), ("metric", "left"), ("value", "right"), ("meaning", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    shown = [metric for metric in catalogue if metric.key in scores]
    for index, metric in enumerate(shown):
        first_of_group = index == 0 or shown[index - 1].group != metric.group
        last_of_group = index == len(shown) - 1 or shown[index + 1].group != metric.group
        table.add_row(
            metric.group if first_of_group else "",
            metric.label,
            metric.format(scores[metric.key]),
            f"{metric.meaning} {metric.arrow}".strip(),
            end_section=last_of_group,  # a rule under each group, as the paper's table separates them
        )
    return table


def _breakdown_table(breakdown: Breakdown) -> Table:
    """Metrics down, groups across, then the gap and which group is worst."""
    table = Table(title=f"By {breakdown.by}", title_justify="left")
    table.add_column("metric")
    for group in breakdown.groups:
        table.add_column(f"{group.label}\n(n = {group.n})", justify="right")
    table.add_column("gap", justify="right")
    table.add_column("worst")
    for metric in (*SCORE_TABLE, *BEYOND_METRICS):
        if not any(metric.key in group.scores for group in breakdown.groups):
            continue
        gap = breakdown.gaps.get(metric.key)
        gap_text = metric.format(gap["gap"]) if gap else ""
        tie = gap_text == metric.format(0.0)  # no group is worse, as printed
        table.add_row(
            f"{metric.label} {metric.arrow}".strip(),
            *(metric.format(group.scores.get(metric.key)) for group in breakdown.groups),
            gap_text,
            ("tie" if tie else gap["worst"]) if gap else "",
        )
    return table
