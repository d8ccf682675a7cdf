"""``pepler compare`` as a library call: load the rows, fold them into groups when asked, render them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pepler_cli.errors import UsageError
from pepler_cli.evaluation import comparison, grouping

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
    by: str | None = None,
    notes: list[str] | None = None,
) -> str | Table:
    """What ``pepler compare`` prints: text in ``output_format`` (markdown, csv, json, latex) or, for
    ``table``, a rich Table. ``group_by`` folds rows into mean ± std; ``baseline`` adds the t-test marks;
    ``by`` shows each row's groups of predictions (``pepler score --by``) as rows of their own. ``notes``
    receives the lines for the person at the terminal: which rows read the test record's feature when others
    did not (comparison.mixing_warning)."""
    if baseline is not None and not group_by:
        raise UsageError("--baseline: give --group-by too (the test compares groups of runs, e.g. by split)")
    rows = comparison.load_rows(paths, key, by)
    warning = comparison.mixing_warning(rows)
    if warning is not None and notes is not None:
        notes.append(warning)
    columns = comparison.metric_columns(rows, all_metrics)
    if group_by:
        grouped = grouping.group_rows(rows, group_by, baseline)
        subject: object = grouped
        as_json = lambda: grouping.grouped_json(grouped)  # noqa: E731 (only for --format json)
        renderers = {
            "markdown": grouping.render_grouped_markdown,
            "csv": grouping.render_grouped_csv,
            "latex": grouping.render_grouped_latex,
            "table": grouping.grouped_table,
        }
    else:
        subject, as_json = rows, lambda: comparison.to_json(rows)
        renderers = {
            "markdown": comparison.render_markdown,
            "csv": comparison.render_csv,
            "latex": comparison.render_latex,
            "table": comparison.rich_table,
        }
    if output_format == "json":
        return json.dumps(as_json(), indent=2, ensure_ascii=False) + "\n"
    return renderers[output_format](subject, columns)  # type: ignore[operator]
