"""``pepler compare`` as a library call: load the rows, fold them into groups when asked, render them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pepler_cli.errors import UsageError
from pepler_cli.evaluation import comparison, grouping
from pepler_cli.evaluation.comparison import Row

if TYPE_CHECKING:
    from rich.table import Table

OUTPUT_FORMATS = ("table", "markdown", "csv", "json", "latex")


def render_comparison(
    paths: Sequence[Path],
    output_format: str,
    key: str | None = None,
    all_metrics: bool = False,
    group_by: Sequence[str] = (),
    baseline: Path | None = None,
) -> str | Table:
    """What ``pepler compare`` prints: text in ``output_format`` (markdown, csv, json, latex) or, for
    ``table``, a rich Table. ``group_by`` folds rows into mean ± std; ``baseline`` adds the t-test marks."""
    if baseline is not None and not group_by:
        raise UsageError("--baseline: give --group-by too (the test compares groups of runs, e.g. by split)")
    rows = comparison.load_rows(paths, key)
    if group_by:
        return _render_grouped(rows, output_format, all_metrics, group_by, baseline)
    if output_format == "json":
        return json.dumps(comparison.to_json(rows), indent=2, ensure_ascii=False) + "\n"
    columns = comparison.metric_columns(rows, all_metrics)
    renderers = {
        "markdown": comparison.render_markdown,
        "csv": comparison.render_csv,
        "latex": comparison.render_latex,
    }
    if output_format in renderers:
        return renderers[output_format](rows, columns)
    return comparison.rich_table(rows, columns)


def _render_grouped(
    rows: Sequence[Row], output_format: str, all_metrics: bool, group_by: Sequence[str], baseline: Path | None
) -> str | Table:
    grouped = grouping.group_rows(rows, group_by, baseline)
    if output_format == "json":
        return json.dumps(grouping.grouped_json(grouped), indent=2, ensure_ascii=False) + "\n"
    columns = comparison.metric_columns(rows, all_metrics)
    renderers = {
        "markdown": grouping.render_grouped_markdown,
        "csv": grouping.render_grouped_csv,
        "latex": grouping.render_grouped_latex,
    }
    if output_format in renderers:
        return renderers[output_format](grouped, columns)
    return grouping.grouped_table(grouped, columns)
