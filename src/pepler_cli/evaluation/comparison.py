"""``pepler compare``: runs side by side, one row each, in the layout of the paper's comparison table.

A row comes from a run directory (one per entry of its manifest's ``scores:``, which ``pepler score``
records) or from a scores YAML file (its ``run:`` block names the run; without one the file's name stands in).
Columns: the run's name, model, prompt, strategy, rating head and backbone (the last four PEPLER's; "-" for
another model), then the metrics in the paper's order
(BLEU-1, BLEU-4, USR, FMR, FCR, DIV, R1-F, R2-F; RMSE and MAE when a row has them). The best value of each
metric column is marked: lowest for DIV, RMSE and MAE, highest for the rest, every row that ties, values
compared as printed (rounded like the paper), rows without the metric left out.

Feature hints: a row whose predictions were generated with a feature hint shows it after its name
(``pepler [predicted feature (counts)]``). A row that read the test record's own feature (``--feature-hint
given``, the PETER+ setting) is an upper bound, not a competitor: its name carries a dagger
(``pepler† [given feature (reads the test record)]``), it is never marked best while any compared row did not
read the test record (the best of the others is marked instead; when every row read it, they compete among
themselves), ``mixing_warning`` names those rows in one line, and the markdown, LaTeX and rich tables end with a
footnote saying what the dagger means.

Renderers: a rich table, markdown, CSV, JSON and LaTeX (booktabs). With ``--group-by`` the rows are folded
into mean ± std first (``grouping.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.evaluation import tables
from pepler_cli.evaluation.catalogue import (
    ALL_METRICS,
    BEYOND_METRICS,
    METRIC_KEYS,
    MISSING,
    PAPER_METRICS,
    RATING_METRICS,
    Metric,
)
from pepler_cli.evaluation.provenance import NO_HINT, feature_hint_of, hint_label, reads_test_record
from pepler_cli.evaluation.scores_file import read_scores_file
from pepler_cli.files import describe, read_yaml_mapping
from pepler_cli.runs import MANIFEST, RUN_FORMAT

UNKNOWN = "?"
DAGGER = "†"  # marks a row that read the test record's own feature

DESCRIPTIVE_COLUMNS = (
    ("name", "name"),
    ("model", "model"),
    ("prompt", "prompt"),
    ("strategy", "strategy"),
    ("head", "head"),
    ("backbone", "backbone"),
)


@dataclass
class Row:
    """One compared result: who made it, what it was measured on, and its metrics."""

    name: str
    model: str  # the model plugin: pepler, nrt, att2seq, peter
    prompt: str
    strategy: str
    head: str
    backbone: str
    key: str | None  # "split 1 test" etc.; None when unknown
    source: str  # the run directory or scores file it was read from
    kind: str  # "run" or "scores"
    scores: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the run's options (what --group-by compares)
    groups: dict[str, Any] = field(default_factory=dict)  # `score --by` groupings, as recorded
    feature_hint: dict[str, Any] = field(default_factory=lambda: dict(NO_HINT))  # provenance.feature_hint_of

    @property
    def reads_test_record(self) -> bool:
        return reads_test_record(self.feature_hint)

    @property
    def label(self) -> str:
        """The name as tables show it: with its feature hint, if any, and † when it read the test record."""
        return labelled(self.name, self.feature_hint)

    def descriptive(self, column: str) -> str:
        return self.label if column == "name" else str(getattr(self, column))


def labelled(name: str, hint: dict[str, Any]) -> str:
    """``name``, then ``†`` when ``hint`` read the test record, then the hint's label in brackets."""
    label = hint_label(hint)
    if not label:
        return name
    return f"{name}{DAGGER if reads_test_record(hint) else ''} [{label}]"


def mixing_warning(rows: Sequence[Row]) -> str | None:
    """One line naming the rows that read the test record's feature when others did not; None otherwise."""
    reading = [row for row in rows if row.reads_test_record]
    if not reading or len(reading) == len(rows):
        return None
    names = ", ".join(f"{row.name} ({row.key})" if row.key else row.name for row in reading)
    return (
        f"warning: {names} read the test record's own feature (--feature-hint given): an upper bound, not "
        f"comparable with the other rows; marked {DAGGER} and never marked best"
    )


def dagger_footnote(rows: Sequence[Row]) -> str | None:
    """What ``†`` means, for the tables that show one; None when no row has it."""
    if not any(row.reads_test_record for row in rows):
        return None
    note = f"{DAGGER} read the test record's own feature (--feature-hint given): an upper bound"
    return note + ("" if all(row.reads_test_record for row in rows) else ", never marked best")


def load_rows(paths: Sequence[Path], key: str | None = None, by: str | None = None) -> list[Row]:
    """Rows for every argument of ``pepler compare``, in order; any unreadable argument is one PeplerError.

    With ``by`` (a grouping ``pepler score --by`` recorded, or ``cold-start``) each scores entry becomes one
    row per group, its key followed by the group's label.
    """
    if key is not None and not key.strip():
        raise UsageError("--key: give a key such as 'split 1 test'")
    rows: list[Row] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise UsageError(f"{path}: no such run directory or scores file")
        if path.is_dir():
            rows.extend(_run_rows(path, key))
        elif path.name == MANIFEST and _format_of(path) == RUN_FORMAT:
            rows.extend(_run_rows(path.parent, key))
        else:
            rows.append(_scores_file_row(path))
    return rows if by is None else [group for row in rows for group in _group_rows(row, by)]


def _group_rows(row: Row, by: str) -> list[Row]:
    """One row per group of ``row``'s scores grouped ``by``; a row scored without that grouping is an error."""
    grouping = row.groups.get(by)
    if not isinstance(grouping, dict) or not isinstance(grouping.get("groups"), list):
        raise PeplerError(
            f"{row.source}: no scores by {by} under {row.key or 'its scores'} "
            f"(score the predictions with `pepler score … --by {by}`)"
        )
    rows = []
    for number, group in enumerate(grouping["groups"]):
        where = f"{row.source}: field 'groups.{by}.groups[{number}]'"
        if not isinstance(group, dict) or not isinstance(group.get("scores"), dict):
            raise PeplerError(f"{where} must be a mapping with 'label' and 'scores'")
        label = f"{group.get('label')} (n = {group.get('n')})"
        rows.append(
            replace(
                row,
                key=f"{row.key}, {label}" if row.key else label,
                scores=_metrics(group["scores"], Path(row.source), f"groups.{by}.groups[{number}].scores"),
                groups={},
            )
        )
    return rows


def _format_of(path: Path) -> Any:
    return read_yaml_mapping(path, "YAML file").get("format")


def _run_rows(run: Path, key: str | None) -> list[Row]:
    manifest_path = run / MANIFEST
    if not manifest_path.is_file():
        raise PeplerError(f"{run}: neither a pepler run (no {MANIFEST}) nor a scores file")
    manifest = read_yaml_mapping(manifest_path, "run manifest")
    if manifest.get("format") != RUN_FORMAT:
        raise PeplerError(
            f"{manifest_path}: field 'format': expected {RUN_FORMAT!r}, got {manifest.get('format')!r}"
        )
    entries = manifest.get("scores")
    if entries is None or entries == {}:
        raise PeplerError(
            f"{run}: the run has no scores yet; score its predictions with `pepler score PREDS --data DIR`"
        )
    if not isinstance(entries, dict):
        raise PeplerError(f"{manifest_path}: field 'scores' must be a mapping of keys to scores")
    if key is not None:
        if key not in entries:
            known = ", ".join(repr(str(k)) for k in entries)
            raise PeplerError(f"{run}: no scores under --key {key!r} (it has {known})")
        entries = {key: entries[key]}
    config = manifest.get("config")
    config = config if isinstance(config, dict) else {}
    name = manifest.get("name")
    rows = []
    for entry_key, entry in entries.items():
        if not isinstance(entry, dict):
            raise PeplerError(f"{manifest_path}: field 'scores.{entry_key}' must be a mapping of metrics")
        rows.append(
            Row(
                name=str(name) if name not in (None, "") else run.name,
                **_descriptive(config),
                key=str(entry_key),
                source=str(run),
                kind="run",
                scores=_metrics(entry, manifest_path, f"scores.{entry_key}"),
                config=config,
                groups=entry["groups"] if isinstance(entry.get("groups"), dict) else {},
                feature_hint=feature_hint_of(entry, str(manifest_path), f"scores.{entry_key}."),
            )
        )
    return rows


def _scores_file_row(path: Path) -> Row:
    document = read_scores_file(path)
    scores = document["scores"]
    run = document.get("run")
    generation = document.get("generation")
    if run is not None and not isinstance(run, dict):
        raise PeplerError(f"{path}: field 'run' must be a mapping")
    key = generation.get("key") if isinstance(generation, dict) else None
    if isinstance(run, dict):
        name = run.get("name")
        if name in (None, ""):
            name = Path(run["path"]).name if isinstance(run.get("path"), str) else _stem(path)
        descriptive = _descriptive(run)
    else:
        name = _stem(path)
        descriptive = dict.fromkeys(("model", "prompt", "strategy", "head", "backbone"), UNKNOWN)
    config = {k: v for k, v in run.items() if k not in ("path", "name")} if isinstance(run, dict) else {}
    return Row(
        name=str(name),
        key=str(key) if key not in (None, "") else None,
        source=str(path),
        kind="scores",
        scores=_metrics(scores, path, "scores"),
        config=config,
        groups=document["groups"] if isinstance(document.get("groups"), dict) else {},
        feature_hint=feature_hint_of(document, str(path)),
        **descriptive,
    )


def _number_or_none(value: Any, where: str) -> float | None:
    """A metric value as read from YAML: a number, or None when absent or NaN; anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PeplerError(f"{where} must be a number, got {describe(value)}")
    if math.isnan(value):
        return None
    return float(value)


def _metrics(values: dict[str, Any], path: Path, field_name: str) -> dict[str, float]:
    """The known metrics of a scores mapping; other keys (n, predictions, scored, ...) are not metrics."""
    metrics = {}
    for metric_key in sorted(METRIC_KEYS & set(values)):
        value = _number_or_none(values[metric_key], f"{path}: field '{field_name}.{metric_key}'")
        if value is not None:
            metrics[metric_key] = value
    return metrics


def _descriptive(block: dict[str, Any]) -> dict[str, str]:
    """The model and PEPLER's four options from a run's config (or a sidecar's run block): a run from before
    model plugins is PEPLER's; another model has none of PEPLER's options ("-")."""
    model = _text(block, "model") if block.get("model") else "pepler"
    if model != "pepler":
        return {"model": model, **dict.fromkeys(("prompt", "strategy", "head", "backbone"), MISSING)}
    return {
        "model": model,
        "prompt": _text(block, "prompt"),
        "strategy": _text(block, "strategy"),
        "head": _head(block),
        "backbone": _text(block, "backbone"),
    }


def _text(block: dict[str, Any], name: str) -> str:
    value = block.get(name)
    return UNKNOWN if value in (None, "") else str(value)


def _head(block: dict[str, Any]) -> str:
    """The rating head: '-' when the run has none (null), '?' when the block does not say."""
    if "rating_head" not in block:
        return UNKNOWN
    value = block["rating_head"]
    return MISSING if value in (None, "") else str(value)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".scores") or name


# --- columns and best values -------------------------------------------------------------------------


def metric_columns(rows: Sequence[Row], all_metrics: bool = False) -> list[Metric]:
    """The metric columns to show: the paper's (or all, with those beyond the paper that any row has), then
    RMSE and MAE if any row has them."""
    columns = list(ALL_METRICS if all_metrics else PAPER_METRICS)
    if all_metrics:
        columns.extend(m for m in BEYOND_METRICS if any(m.key in row.scores for row in rows))
    columns.extend(m for m in RATING_METRICS if any(m.key in row.scores for row in rows))
    return columns


def show_key_column(rows: Sequence[Row]) -> bool:
    """The key column ("split 1 test") only when rows were measured on different things."""
    return len({row.key for row in rows}) > 1


def best_marks(rows: Sequence[Row], columns: Sequence[Metric]) -> list[set[str]]:
    """For each row, the metric keys where it holds the best value (as printed) of at least two rows.

    Rows that read the test record's feature compete only when every row did: an upper bound is never marked
    best over rows that could not read it."""
    marks: list[set[str]] = [set() for _ in rows]
    legitimate = [index for index, row in enumerate(rows) if not row.reads_test_record]
    competing = legitimate or range(len(rows))
    for metric in (column for column in columns if column.ranked):
        shown = [
            (index, round(rows[index].scores[metric.key], metric.decimals))
            for index in competing
            if metric.key in rows[index].scores and math.isfinite(rows[index].scores[metric.key])
        ]
        if len(shown) < 2:
            continue
        values = [value for _, value in shown]
        best = min(values) if metric.lower_is_better else max(values)
        for index, value in shown:
            if value == best:
                marks[index].add(metric.key)
    return marks


# --- renderers --------------------------------------------------------------------------------------


def _header(rows: Sequence[Row], columns: Sequence[Metric]) -> list[str]:
    labels = [label for _, label in DESCRIPTIVE_COLUMNS]
    if show_key_column(rows):
        labels.append("key")
    return labels + [m.label for m in columns]


def _descriptive_cells(row: Row, with_key: bool) -> list[str]:
    cells = [row.descriptive(column) for column, _ in DESCRIPTIVE_COLUMNS]
    if with_key:
        cells.append(row.key if row.key is not None else UNKNOWN)
    return cells


def _lead(rows: Sequence[Row]) -> int:
    """How many text columns come before the metrics."""
    return len(DESCRIPTIVE_COLUMNS) + show_key_column(rows)


def _cells(
    rows: Sequence[Row], columns: Sequence[Metric], mark: Callable[[str, bool], Any]
) -> list[list[Any]]:
    """Every row's cells; ``mark(text, best)`` writes a metric's value, ``best`` where the row holds the best."""
    with_key = show_key_column(rows)
    return [
        [
            *_descriptive_cells(row, with_key),
            *(mark(metric.format(row.scores.get(metric.key)), metric.key in marks) for metric in columns),
        ]
        for row, marks in zip(rows, best_marks(rows, columns))
    ]


def render_markdown(rows: Sequence[Row], columns: Sequence[Metric]) -> str:
    """A GitHub-flavoured markdown table; best values in **bold**; what † means below it."""
    cells = _cells(rows, columns, lambda text, best: f"**{text}**" if best else text)
    table = tables.markdown_table(_header(rows, columns), _lead(rows), cells)
    footnote = dagger_footnote(rows)
    return table if footnote is None else f"{table}\n{tables.md_escape(footnote)}\n"


def render_csv(rows: Sequence[Row], columns: Sequence[Metric]) -> str:
    """CSV with a header line; numbers rounded as in the paper, an empty cell where a metric is missing."""
    with_key = show_key_column(rows)
    cells = [
        [*_descriptive_cells(row, with_key), *(_csv_value(row, metric) for metric in columns)] for row in rows
    ]
    return tables.csv_table(_header(rows, columns), cells)


def _csv_value(row: Row, metric: Metric) -> str:
    value = row.scores.get(metric.key)
    return "" if value is None else metric.format(value)


def to_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every field of every row, all its metrics unrounded, and ``best``: the metrics where it is best.

    Best is judged over every metric column (as with --all-metrics), whatever the table shows. ``name`` is the
    run's own; ``feature_hint`` and ``reads_test_record`` say what the tables' labels and † say.
    """
    columns = [*ALL_METRICS, *BEYOND_METRICS, *RATING_METRICS]
    order = [m.key for m in columns]
    result = []
    for row, marks in zip(rows, best_marks(rows, columns)):
        result.append(
            {
                "name": row.name,
                "model": row.model,
                "prompt": row.prompt,
                "strategy": row.strategy,
                "head": row.head,
                "backbone": row.backbone,
                "key": row.key,
                "source": row.source,
                "kind": row.kind,
                "feature_hint": row.feature_hint,
                "reads_test_record": row.reads_test_record,
                "scores": {k: row.scores[k] for k in order if k in row.scores},
                "best": [k for k in order if k in marks],
            }
        )
    return result


def rich_table(rows: Sequence[Row], columns: Sequence[Metric]) -> Table:
    """A rich Table; the best value of each metric column in bold green."""
    lead = _lead(rows)
    header = [*_header(rows, columns)[:lead], *(f"{m.label} {m.arrow}" for m in columns)]
    cells = _cells(rows, columns, lambda text, best: Text(text, style="bold green" if best else ""))
    return tables.rich_table(header, lead, cells, caption=dagger_footnote(rows))


def render_latex(rows: Sequence[Row], columns: Sequence[Metric]) -> str:
    """A booktabs table a paper can \\input (needs \\usepackage{booktabs}); best values in bold."""
    cells = _cells(rows, columns, lambda text, best: f"\\textbf{{{text}}}" if best else text)
    table = tables.latex_table(_header(rows, columns), _lead(rows), cells)
    footnote = dagger_footnote(rows)
    return table if footnote is None else f"{table}% {footnote}\n"
