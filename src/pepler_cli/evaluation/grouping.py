"""``pepler compare --group-by``: rows that differ only in the grouped keys folded into mean ± std, and
Student's t-test against a baseline group, as the paper's tables report (means over five splits, ** p < 0.01,
* p < 0.05 over the best baseline).

Two rows belong to one group when their runs' options are equal except for the ``--group-by`` keys and the
options that do not change what is trained (output paths, resume, device, checkpointing, …), and their scores
keys are equal once the grouped keys are taken out ("split 3 test" → "test" when grouping by split). The
test against the baseline is paired over the grouped values both groups have (the splits, say) when they
have the same ones, else Welch's unequal-variance test; the output names the test used.

Rows with different feature hints never fold together. A group that read the test record's own feature
(``--feature-hint given``: its name carries † and the hint) is tested only against a baseline that read it
too, and a baseline that read it only against groups that did: an upper bound gets no significance mark over
runs that could not read it. The footer says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_cli.errors import UsageError
from pepler_cli.evaluation import tables
from pepler_cli.evaluation.catalogue import ALL_METRICS, BEYOND_METRICS, RATING_METRICS, Metric
from pepler_cli.evaluation.comparison import DAGGER, Row, labelled

if TYPE_CHECKING:
    from rich.table import Table

# Options that say where and how a run was computed, not what it is: never part of a group's identity.
NOT_IDENTITY = frozenset(
    ("out", "overwrite", "resume", "device", "precision", "checkpoint_every", "grad_accum", "fsdp", "data")
)
SIGNIFICANCE = ((0.01, "**"), (0.05, "*"))


@dataclass
class Group:
    """Rows folded together: their mean, sample standard deviation and count per metric."""

    name: str
    rows: list[Row]
    varied: dict[str, list[Any]]  # each grouped key and its values, in row order
    key: str | None
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    marks: dict[str, str] = field(default_factory=dict)  # metric -> "**", "*" or ""
    p_values: dict[str, float] = field(default_factory=dict)
    is_baseline: bool = False

    @property
    def reads_test_record(self) -> bool:
        """Its rows read the test record's feature (rows of one group share their feature hint)."""
        return any(row.reads_test_record for row in self.rows)


@dataclass
class Grouped:
    groups: list[Group]
    by: tuple[str, ...]
    baseline: Group | None
    test: str | None  # "paired t-test over split" / "Welch's t-test" / a mix, for the footer


def group_rows(rows: Sequence[Row], by: Sequence[str], baseline: Path | None = None) -> Grouped:
    """Fold ``rows`` into groups by ``by``; with ``baseline`` (any run of the baseline group), test each
    other group's means against it."""
    if not by:
        raise UsageError("--group-by: name at least one key, e.g. split")
    groups: dict[tuple, Group] = {}
    for row in rows:
        identity, key = _identity(row, by)
        group = groups.get((identity, key))
        if group is None:
            name = labelled(_group_name(row, by), row.feature_hint)
            group = groups[(identity, key)] = Group(name, [], {k: [] for k in by}, key)
        group.rows.append(row)
        for name in by:
            group.varied[name].append(_value(row, name))
    folded = list(groups.values())
    for group in folded:
        _summarise(group)
    chosen = _baseline_group(folded, baseline) if baseline is not None else None
    tests: set[str] = set()
    if chosen is not None:
        chosen.is_baseline = True
        for group in folded:
            # An upper bound (given) and runs that could not read the test record are not tested together.
            if group is not chosen and group.reads_test_record == chosen.reads_test_record:
                tests.update(_test_against(group, chosen, by))
    return Grouped(folded, tuple(by), chosen, " and ".join(sorted(tests)) or None)


def _identity(row: Row, by: Sequence[str]) -> tuple[tuple, str | None]:
    config = {k: v for k, v in row.config.items() if k not in NOT_IDENTITY and k not in by}
    identity = tuple(sorted((k, repr(v)) for k, v in config.items()))
    if not row.config:  # a scores file without its run's options: its descriptive columns stand in
        identity = (
            ("prompt", row.prompt),
            ("strategy", row.strategy),
            ("head", row.head),
            ("backbone", row.backbone),
        )
    identity += (("feature_hint", repr(sorted(row.feature_hint.items()))),)
    key = row.key
    if key is not None and "split" in by:
        key = re.sub(r"\bsplit \d+\s*", "", key).strip() or None
    return identity, key


def _value(row: Row, name: str) -> Any:
    if name == "split" and "split" not in row.config and row.key is not None:
        found = re.search(r"\bsplit (\d+)", row.key)
        return int(found.group(1)) if found else None
    return row.config.get(name)


def _group_name(row: Row, by: Sequence[str]) -> str:
    """A sweep's cell name without the grouped options ("lr=0.01,split=1" → "lr=0.01"); another name without
    its trailing number (runs of a group are usually named alike: "pepler-s3" → "pepler")."""
    parts = row.name.split(",")
    if all("=" in part for part in parts):
        kept = [part for part in parts if part.split("=", 1)[0].replace("-", "_") not in by]
        return ",".join(kept) or row.name
    return re.sub(r"[-_.]?(split|s)?\d+$", "", row.name) or row.name


def _summarise(group: Group) -> None:
    for metric in (*ALL_METRICS, *BEYOND_METRICS, *RATING_METRICS):
        values = [row.scores[metric.key] for row in group.rows if metric.key in row.scores]
        if not values:
            continue
        mean = sum(values) / len(values)
        group.mean[metric.key] = mean
        group.count[metric.key] = len(values)
        if len(values) > 1:
            group.std[metric.key] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _baseline_group(groups: Sequence[Group], baseline: Path) -> Group:
    wanted = Path(baseline).resolve()
    for group in groups:
        if any(Path(row.source).resolve() == wanted for row in group.rows):
            return group
    raise UsageError(f"--baseline {baseline}: not one of the compared runs or scores files")


def _test_against(group: Group, baseline: Group, by: Sequence[str]) -> set[str]:
    """Mark each metric of ``group`` whose mean differs significantly from the baseline's; the tests used."""
    from scipy import stats

    used: set[str] = set()
    for metric in (*ALL_METRICS, *BEYOND_METRICS, *RATING_METRICS):
        ours, theirs = _paired_values(group, baseline, metric, by)
        if ours is not None and theirs is not None and len(ours) >= 2:
            used.add(f"paired t-test over {', '.join(by)}")
            differences = [a - b for a, b in zip(ours, theirs)]
            if _constant(differences):
                # The same difference on every split: none at all says nothing; a shift without any spread is
                # as significant as a t-test can say (its statistic is infinite).
                if abs(differences[0]) > 1e-12:
                    group.p_values[metric.key], group.marks[metric.key] = 0.0, SIGNIFICANCE[0][1]
                continue
            result = stats.ttest_rel(ours, theirs)
        else:
            a = [row.scores[metric.key] for row in group.rows if metric.key in row.scores]
            b = [row.scores[metric.key] for row in baseline.rows if metric.key in row.scores]
            if len(a) < 2 or len(b) < 2 or (_constant(a) and _constant(b)):
                continue
            result = stats.ttest_ind(a, b, equal_var=False)
            used.add("Welch's t-test")
        p = float(result.pvalue)
        if math.isnan(p):
            continue
        group.p_values[metric.key] = p
        group.marks[metric.key] = next((mark for level, mark in SIGNIFICANCE if p < level), "")
    return used


def _constant(values: Sequence[float]) -> bool:
    return max(values) - min(values) <= 1e-12 * max(1.0, *(abs(v) for v in values))


def _paired_values(
    group: Group, baseline: Group, metric: Metric, by: Sequence[str]
) -> tuple[list[float] | None, list[float] | None]:
    """The two groups' values matched by grouped value (split 1 with split 1, …) when both have the same
    set of grouped values for this metric; (None, None) otherwise."""
    ours = _by_grouped_value(group, metric, by)
    theirs = _by_grouped_value(baseline, metric, by)
    if ours is None or theirs is None or set(ours) != set(theirs):
        return None, None
    order = sorted(ours, key=repr)
    return [ours[k] for k in order], [theirs[k] for k in order]


def _by_grouped_value(group: Group, metric: Metric, by: Sequence[str]) -> dict[tuple, float] | None:
    values: dict[tuple, float] = {}
    for index, row in enumerate(group.rows):
        if metric.key not in row.scores:
            continue
        grouped = tuple(repr(group.varied[name][index]) for name in by)
        if grouped in values:
            return None  # two rows share a grouped value: nothing to pair by
        values[grouped] = row.scores[metric.key]
    return values


# --- renderers ---------------------------------------------------------------------------------------------


def cell(group: Group, metric: Metric, latex: bool = False) -> str:
    """``mean ± std`` rounded as the paper rounds the metric, with the significance mark; '-' when missing."""
    if metric.key not in group.mean:
        return "-"
    mean = metric.format(group.mean[metric.key])
    std = group.std.get(metric.key)
    mark = group.marks.get(metric.key, "")
    if latex:
        text = f"{mean} \\pm {metric.format(std)}" if std is not None else mean
        return f"${text}$" + (f"\\textsuperscript{{{mark}}}" if mark else "")
    return (f"{mean} ± {metric.format(std)}" if std is not None else mean) + mark


def _label(group: Group) -> str:
    counts = ", ".join(f"{len(set(map(repr, values)))} {name}" for name, values in group.varied.items())
    return f"{group.name} ({counts})" + (" [baseline]" if group.is_baseline else "")


def _header(grouped: Grouped, columns: Sequence[Metric]) -> list[str]:
    keys = {g.key for g in grouped.groups}
    return ["group", *(["key"] if len(keys) > 1 else []), "n", *(m.label for m in columns)]


def _lead(grouped: Grouped, group: Group) -> list[str]:
    with_key = len({g.key for g in grouped.groups}) > 1
    return [_label(group), *([group.key or "?"] if with_key else []), str(len(group.rows))]


def footer(grouped: Grouped) -> str:
    parts = [f"mean ± sample standard deviation over {', '.join(grouped.by)}"]
    if grouped.baseline is not None:
        test = grouped.test or "no test (fewer than two values)"
        parts.append(f"{test} against {grouped.baseline.name}: ** p < 0.01, * p < 0.05")
    reading = [group.reads_test_record for group in grouped.groups]
    if any(reading):
        note = f"{DAGGER} read the test record's own feature (--feature-hint given): an upper bound"
        if grouped.baseline is not None and not all(reading):
            note += ", tested only against a baseline that read it too"
        parts.append(note)
    return "; ".join(parts)


def render_grouped_markdown(grouped: Grouped, columns: Sequence[Metric]) -> str:
    header = _header(grouped, columns)
    table = tables.markdown_table(header, len(header) - len(columns), _rows(grouped, columns))
    return table + f"\n{footer(grouped)}\n"


def render_grouped_csv(grouped: Grouped, columns: Sequence[Metric]) -> str:
    metric_header = [f"{m.label} {part}" for m in columns for part in ("mean", "std", "p")]
    rows = []
    for group in grouped.groups:
        values: list[str] = []
        for metric in columns:
            mean, std, p = (
                group.mean.get(metric.key),
                group.std.get(metric.key),
                group.p_values.get(metric.key),
            )
            values += ["" if mean is None else metric.format(mean), "" if std is None else metric.format(std)]
            values.append("" if p is None else f"{p:.4g}")
        rows.append([*_lead(grouped, group), *values])
    return tables.csv_table([*_header(grouped, []), *metric_header], rows)


def render_grouped_latex(grouped: Grouped, columns: Sequence[Metric]) -> str:
    """A booktabs table a paper can \\input (needs \\usepackage{booktabs})."""
    header = _header(grouped, columns)
    table = tables.latex_table(header, len(header) - len(columns), _rows(grouped, columns, latex=True))
    return table + f"% {footer(grouped)}\n"


def _rows(grouped: Grouped, columns: Sequence[Metric], latex: bool = False) -> list[list[str]]:
    return [[*_lead(grouped, g), *(cell(g, m, latex=latex) for m in columns)] for g in grouped.groups]


def grouped_json(grouped: Grouped) -> dict[str, Any]:
    return {
        "group_by": list(grouped.by),
        "test": grouped.test,
        "baseline": grouped.baseline.name if grouped.baseline is not None else None,
        "groups": [
            {
                "name": g.name,
                "key": g.key,
                "baseline": g.is_baseline,
                "reads_test_record": g.reads_test_record,
                "n": len(g.rows),
                "sources": [row.source for row in g.rows],
                "varied": g.varied,
                "mean": g.mean,
                "std": g.std,
                "count": g.count,
                "p": g.p_values,
                "marks": {k: v for k, v in g.marks.items() if v},
            }
            for g in grouped.groups
        ],
    }


def grouped_table(grouped: Grouped, columns: Sequence[Metric]) -> Table:
    """A rich Table of the groups, the test named in its caption."""
    header = _header(grouped, columns)
    lead = len(header) - len(columns)
    header[lead:] = [f"{metric.label} {metric.arrow}" for metric in columns]
    return tables.rich_table(header, lead, _rows(grouped, columns), caption=footer(grouped))
