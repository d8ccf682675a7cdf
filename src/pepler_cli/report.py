"""``pepler report RUNS_OR_SWEEP --out report.html``: one self-contained HTML page to look at.

It holds the comparison table (folded by ``--group-by``, or by the sweep's own group-by); when the rows carry
them, a table of the metrics beyond the paper (``pepler score --metrics``) and, per grouping of the
predictions (``pepler score --by``, cold against warm), a table of metrics by group with the gap between the
best and the worst group; the figures (each run's training curves, a bar chart of the comparison) as inline
SVG, the dataset's statistics (the paper's Table 4 columns) and a sample of generated explanations beside
their references with the feature highlighted (as the paper's Table 6). No script, no network, no external
file: it opens anywhere.

Rows are named as ``pepler compare`` names them: with their feature hint, and † when they read the test
record's own feature (``--feature-hint given``, an upper bound); the comparison's note says what † means.
"""

from __future__ import annotations

import html
import math
import re
import tempfile
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.evaluation.catalogue import (
    BEYOND_METRICS,
    METRIC_KEYS,
    PAPER_METRICS,
    RATING_METRICS,
    SCORE_TABLE,
    Metric,
)
from pepler_cli.evaluation.comparison import Row, dagger_footnote, load_rows, mixing_warning
from pepler_cli.files import atomic_write_text, describe, read_yaml_mapping
from pepler_cli.runs import MANIFEST

MAX_CURVES = 6  # training-curve figures: the first runs only, the page stays readable
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
mark { background: #ffe27a; }
figure { display: inline-block; margin: 1em; }
figure svg { max-width: 38em; height: auto; }
.note { color: #666; font-size: 0.85em; }
"""


def write_report(
    paths: Sequence[Path], out: Path, group_by: Sequence[str] = (), samples: int = 10, key: str | None = None
) -> dict[str, Any]:
    """Write the report; returns what it holds (title, rows, figures, samples) for the caller to check, and
    ``notes`` for the person at the terminal (which rows read the test record's feature when others did not)."""
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: the report's name must end in .html")
    runs, sweep_group_by, title = _inputs(paths)
    group_by = list(group_by) or sweep_group_by
    rows = load_rows(runs, key)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _comparison_section(rows, group_by),
        _beyond_section(rows, group_by),
        _groups_section(rows),
        _figures_section(rows, group_by),
        _dataset_section(rows),
        _samples_section(rows, samples),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(section for section in sections if section)
        + "\n</body>\n</html>\n"
    )
    atomic_write_text(out, page)
    warning = mixing_warning(rows)
    return {
        "title": title,
        "rows": [row.name for row in rows],
        "out": str(out),
        "figures": page.count("<svg"),
        "notes": [warning] if warning is not None else [],
    }


def _inputs(paths: Sequence[Path]) -> tuple[list[Path], list[str], str]:
    """Run directories and scores files to report on, the sweep's group-by, and a title."""
    if len(paths) == 1 and Path(paths[0]).is_file() and Path(paths[0]).suffix in (".yaml", ".yml"):
        document = read_yaml_mapping(Path(paths[0]), "sweep file")
        if "grid" in document:  # a sweep file: its scored cells
            from pepler_cli.sweep import read_sweep, scored_runs

            sweep = read_sweep(Path(paths[0]))
            return scored_runs(sweep), sweep.group_by, f"pepler report: sweep {sweep.name}"
    expanded: list[Path] = []
    group_by: list[str] = []
    for path in map(Path, paths):
        cells = path / "runs"
        if path.is_dir() and not (path / MANIFEST).exists() and cells.is_dir():  # a sweep's output folder
            expanded.extend(sorted(p for p in cells.iterdir() if (p / MANIFEST).is_file()))
            group_by = group_by or _sweep_group_by(path / "comparison.json")
        else:
            expanded.append(path)
    if not expanded:
        raise PeplerError("nothing to report: give run directories, scores files or a sweep")
    return (
        expanded,
        group_by,
        f"pepler report: {len(expanded)} runs" if len(expanded) > 1 else f"pepler report: {expanded[0].name}",
    )


def _sweep_group_by(comparison: Path) -> list[str]:
    """The group-by a sweep folded its comparison by (from its comparison.json), if it is there."""
    import json

    try:
        found = json.loads(comparison.read_text(encoding="utf-8")).get("group_by")
    except (OSError, ValueError, AttributeError):
        return []
    return [str(key) for key in found] if isinstance(found, list) else []


def _comparison_section(rows: Sequence[Row], group_by: Sequence[str]) -> str:
    from pepler_cli.evaluation.comparison import metric_columns

    columns = metric_columns(rows)
    table, note = _rows_table(rows, group_by, columns, [m.label for m in columns])
    return f"<h2>Comparison</h2>\n{table}\n<p class=note>{html.escape(note)}</p>"


def _rows_table(
    rows: Sequence[Row], group_by: Sequence[str], columns: Sequence[Metric], labels: Sequence[str]
) -> tuple[str, str]:
    """The rows (folded by ``group_by`` when given) with the metric ``columns`` headed ``labels``, as a table,
    and the note that says what a row is."""
    from pepler_cli.evaluation import grouping

    if group_by:
        grouped = grouping.group_rows(rows, group_by)
        header = ["group", "n", *labels]
        body = [
            [f"{g.name}", str(len(g.rows)), *(grouping.cell(g, m) for m in columns)] for g in grouped.groups
        ]
        note = grouping.footer(grouped)
    else:
        header = ["name", "model", "prompt", "strategy", "head", "backbone", *labels]
        body = [
            [
                row.label,
                row.model,
                row.prompt,
                row.strategy,
                row.head,
                row.backbone,
                *(m.format(row.scores.get(m.key)) for m in columns),
            ]
            for row in rows
        ]
        note = "one row per run and recorded score"
    footnote = dagger_footnote(rows)
    if footnote is not None:
        note = f"{note}; {footnote}"
    return _table(header, body, numeric=range(len(header) - len(columns), len(header))), note


def _beyond_section(rows: Sequence[Row], group_by: Sequence[str]) -> str:
    """The metrics beyond the paper that any row has (``pepler score --metrics``), rows as in the comparison;
    empty when none has one."""
    columns = [m for m in BEYOND_METRICS if any(m.key in row.scores for row in rows)]
    if not columns:
        return ""
    table, note = _rows_table(rows, group_by, columns, [_arrowed(m) for m in columns])
    legend = (
        f"{html.escape(note)}; ↑ higher is better, ↓ lower is better; a column without an arrow describes "
        "the references, the same for every run"
    )
    return f"<h2>Beyond the paper</h2>\n{table}\n<p class=note>{legend}</p>\n{_meanings(columns)}"


def _arrowed(metric: Metric) -> str:
    """The metric's label and its direction; a property of the references (not ranked) gets no arrow."""
    return f"{metric.label} {metric.arrow}" if metric.ranked else metric.label


def _meanings(columns: Sequence[Metric]) -> str:
    items = "".join(
        f"<li><b>{html.escape(m.label)}</b> ({html.escape(m.group)}): {html.escape(m.meaning)}</li>"
        for m in columns
    )
    return f"<ul class=note>{items}</ul>"


@dataclass
class _Group:
    label: str
    n: str
    scores: dict[str, float]


def _groups_section(rows: Sequence[Row]) -> str:
    """Per row and grouping of its predictions (``pepler score --by``, cold against warm): every metric per
    group, the gap between the best and the worst group and which is worst; empty when no row has one."""
    parts = []
    for row in rows:
        for by in row.groups:
            heading = f"{row.label} ({row.key})" if row.key else row.label
            title = f"{heading}: by {by}"
            parts.append(f"<h3>{html.escape(title)}</h3>\n{_breakdown_table(row, str(by))}")
    if not parts:
        return ""
    note = (
        "<p class=note>each metric per group of predictions; gap: best group minus worst, in the metric's "
        "direction (↑ higher is better, ↓ lower is better)</p>"
    )
    return "<h2>Who gets good explanations</h2>\n" + note + "\n" + "\n".join(parts)


def _breakdown_table(row: Row, by: str) -> str:
    """Metrics down, groups across, then the gap and the worst group (``pepler score``'s table, in HTML)."""
    groups, gaps = _grouping(row, by)
    header = ["metric", *(f"{g.label} (n = {g.n})" for g in groups), "gap", "worst"]
    body = []
    for metric in (*SCORE_TABLE, *BEYOND_METRICS):
        if not any(metric.key in g.scores for g in groups):
            continue
        gap = gaps.get(metric.key)
        gap_text = metric.format(gap[0]) if gap else ""
        # Groups equal as printed have no worst: naming one (the first of the tie) would mislead.
        worst = "" if gap is None else ("tie" if gap_text == metric.format(0.0) else gap[1])
        body.append([
            _arrowed(metric), *(metric.format(g.scores.get(metric.key)) for g in groups), gap_text, worst
        ])  # fmt: skip
    return _table(header, body, numeric=range(1, len(groups) + 2))


def _grouping(row: Row, by: str) -> tuple[list[_Group], dict[str, tuple[float, str]]]:
    """The groups of ``row``'s grouping ``by`` and each metric's (gap, worst group), checked: a malformed
    entry is one line naming its file and field."""
    where = (
        f"{row.source}/{MANIFEST}: field 'scores.{row.key}.groups.{by}"
        if row.kind == "run"
        else f"{row.source}: field 'groups.{by}"
    )
    grouping = row.groups[by]
    if not isinstance(grouping, dict) or not isinstance(grouping.get("groups"), list):
        raise PeplerError(f"{where}' must be a mapping with a list 'groups', got {describe(grouping)}")
    groups = []
    for number, group in enumerate(grouping["groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("scores"), dict):
            raise PeplerError(f"{where}.groups[{number}]' must be a mapping with 'label', 'n' and 'scores'")
        scores = {
            key: _number(value, f"{where}.groups[{number}].scores.{key}'")
            for key, value in group["scores"].items()
            if key in METRIC_KEYS  # other keys are not metrics
        }
        label, n = group.get("label"), group.get("n")
        known = {key: value for key, value in scores.items() if value is not None}
        groups.append(_Group(str(label), "?" if n is None else str(n), known))
    gaps: dict[str, tuple[float, str]] = {}
    recorded = grouping.get("gaps") or {}
    if not isinstance(recorded, dict):
        raise PeplerError(f"{where}.gaps' must be a mapping of metrics, got {describe(recorded)}")
    for key, gap in recorded.items():
        if not isinstance(gap, dict):
            raise PeplerError(f"{where}.gaps.{key}' must be a mapping with 'gap' and 'worst'")
        value = _number(gap.get("gap"), f"{where}.gaps.{key}.gap'")
        if value is not None:
            gaps[str(key)] = (value, str(gap.get("worst", "?")))
    return groups, gaps


def _number(value: Any, where: str) -> float | None:
    """A recorded metric value: a number, or None when absent or NaN; anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PeplerError(f"{where} must be a number, got {describe(value)}")
    return None if math.isnan(value) else float(value)


def _table(header: Sequence[str], body: Sequence[Sequence[str]], numeric: Container[int] = ()) -> str:
    """An HTML table, every cell escaped; the columns in ``numeric`` right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for cells in body:
        tds = "".join(
            f'<td class="number">{html.escape(c)}</td>' if i in numeric else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(cells)
        )
        lines.append(f"<tr>{tds}</tr>")
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)


def _figures_section(rows: Sequence[Row], group_by: Sequence[str]) -> str:
    from pepler_cli.plots import plot_bars, plot_curves

    figures = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = list(dict.fromkeys(Path(row.source) for row in rows if row.kind == "run"))
        for number, run in enumerate(runs[:MAX_CURVES]):
            drawn = plot_curves(run, Path(scratch) / f"curves{number}.svg")
            figures.append(_figure(Path(drawn["out"]), drawn["title"]))
        metric = next(
            (m for m in (*PAPER_METRICS, *RATING_METRICS) if any(m.key in r.scores for r in rows)), None
        )
        if metric is not None and len(rows) > 1:
            sources = list(dict.fromkeys(Path(row.source) for row in rows))
            drawn = plot_bars(sources, metric.key, Path(scratch) / "bars.svg", group_by)
            figures.append(_figure(Path(drawn["out"]), drawn["title"]))
    return "<h2>Figures</h2>\n" + "\n".join(figures)


def _figure(path: Path, caption: str) -> str:
    svg = path.read_text(encoding="utf-8")
    svg = svg[svg.index("<svg") :]  # inline: without the XML declaration and doctype
    return f"<figure>\n{svg}\n<figcaption>{html.escape(caption)}</figcaption>\n</figure>"


def _dataset_section(rows: Sequence[Row]) -> str:
    """The statistics of the datasets the runs were trained on (Table 4's columns)."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        data = row.config.get("data")
        if isinstance(data, str) and data not in seen and (Path(data) / MANIFEST).is_file():
            seen[data] = read_yaml_mapping(Path(data) / MANIFEST, "dataset manifest")
    if not seen:
        return "<h2>Dataset</h2>\n<p class=note>the runs' prepared datasets are not here</p>"
    header = [
        "dataset",
        "users",
        "items",
        "records",
        "features",
        "records/user",
        "records/item",
        "words/explanation",
    ]
    body = []
    for path, manifest in seen.items():
        counts, stats = manifest.get("counts") or {}, manifest.get("statistics") or {}
        body.append([
            str(manifest.get("name", path)),
            *(str(counts.get(k, "?")) for k in ("users", "items", "records", "features")),
            *(f"{float(stats[k]):.2f}" if isinstance(stats.get(k), (int, float)) else "?"
              for k in ("records_per_user", "records_per_item", "words_per_explanation")),
        ])  # fmt: skip
    return f"<h2>Dataset</h2>\n{_table(header, body, numeric=range(1, len(header)))}"


def _samples_section(rows: Sequence[Row], samples: int) -> str:
    """Generated explanations beside their references, the feature highlighted (the paper's Table 6)."""
    from pepler_cli.predictions import read_predictions

    parts = ["<h2>Explanations</h2>"]
    for row in rows[:MAX_CURVES]:
        predictions = _predictions_of(row)
        if predictions is None:
            continue
        chosen = read_predictions(predictions)[:samples]
        lines = [
            "<tr>" + "".join(
                f"<td>{cell}</td>"
                for cell in (html.escape(p.user), html.escape(p.item), html.escape(p.feature or "-"),
                             _highlight(p.reference, p.feature), _highlight(p.generated, p.feature))
            ) + "</tr>"
            for p in chosen
        ]  # fmt: skip
        head = "".join(f"<th>{h}</th>" for h in ("user", "item", "feature", "reference", "generated"))
        parts.append(
            f"<h3>{html.escape(row.label)} ({html.escape(row.key or '')})</h3>\n<table>\n<thead><tr>{head}</tr>"
            f"</thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"
        )
    if len(parts) == 1:
        parts.append("<p class=note>no predictions file of these runs is here</p>")
    return "\n".join(parts)


def _predictions_of(row: Row) -> Path | None:
    if row.kind != "run":
        return None
    manifest = read_yaml_mapping(Path(row.source) / MANIFEST, "run manifest")
    entry = (manifest.get("scores") or {}).get(row.key) or {}
    path = entry.get("predictions") if isinstance(entry, dict) else None
    return Path(path) if isinstance(path, str) and Path(path).is_file() else None


def _highlight(text: str | None, feature: str | None) -> str:
    escaped = html.escape(text) if text is not None else "-"
    if not feature:
        return escaped
    pattern = re.compile(re.escape(html.escape(feature)), re.IGNORECASE)
    return pattern.sub(lambda found: f"<mark>{found.group(0)}</mark>", escaped)
