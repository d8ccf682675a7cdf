"""``pepler plot``: the paper's kinds of figure, drawn with matplotlib (headless, PNG or SVG by the suffix).

- ``curves RUN``: a run's training curves (training and validation loss, validation perplexity) per epoch,
  its stages marked, each stage's best epoch starred.
- ``sweep RUNS… --x OPTION --metric M [--lines OPTION]``: a metric against a swept option (learning rate, λ,
  backbone), one line per value of another (strategy, rating head), error bars = standard deviation over the
  runs that differ in nothing else (the splits): the layout of the paper's Figs. 6, 7 and 9.
- ``bars RUNS… --metric M [--group-by split]``: one bar per run (or per group, with error bars).

Each function writes the figure atomically and returns what it drew (title, axes, series), so callers and
tests can check the content, not only that a file exists.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.evaluation.catalogue import ALL_METRICS, RATING_METRICS, Metric
from pepler_cli.files import atomic_file
from pepler_cli.runs import read_manifest

FORMATS = {".png": "png", ".svg": "svg"}


def _metric(key: str) -> Metric:
    for metric in (*ALL_METRICS, *RATING_METRICS):
        if key in (metric.key, metric.label, metric.label.lower()):
            return metric
    known = ", ".join(m.key for m in (*ALL_METRICS, *RATING_METRICS))
    raise UsageError(f"--metric {key}: not a metric (one of {known})")


def _check_out(out: Path) -> str:
    kind = FORMATS.get(Path(out).suffix.lower())
    if kind is None:
        raise UsageError(f"--out {out}: the figure's name must end in .png or .svg")
    return kind


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, out: Path) -> None:
    kind = _check_out(out)
    with atomic_file(out, "wb") as handle:
        figure.savefig(handle, format=kind, dpi=120, bbox_inches="tight", metadata=_metadata(kind))
    _pyplot().close(figure)


def _metadata(kind: str) -> dict[str, Any]:
    # No creation date: the same inputs give the same file.
    return {"Date": None} if kind == "svg" else {}


def plot_curves(run: Path, out: Path) -> dict[str, Any]:
    """Training curves of one run: loss and perplexity per epoch, stages and best epochs marked."""
    _check_out(out)
    manifest = read_manifest(run)
    stages = manifest.get("stages") or []
    if not stages:
        raise PeplerError(f"{run}: the run's manifest has no stages to plot")
    plt = _pyplot()
    figure, (loss_axes, ppl_axes) = plt.subplots(1, 2, figsize=(10, 4))
    title = f"{manifest.get('name', Path(run).name)}: training curves"
    figure.suptitle(title)
    offset, drawn = 0, []
    for stage in stages:
        epochs = stage.get("epochs") or []
        x = [offset + e["epoch"] for e in epochs]
        loss_axes.plot(x, [e["train_loss"] for e in epochs], "o-", label=f"{stage['name']}: train")
        loss_axes.plot(x, [e["valid_loss"] for e in epochs], "s--", label=f"{stage['name']}: validation")
        ppl_axes.plot(x, [e["valid_perplexity"] for e in epochs], "o-", label=stage["name"])
        best = stage.get("best_epoch")
        if best:
            best_epoch = epochs[best - 1]
            loss_axes.plot(offset + best, best_epoch["valid_loss"], "*", markersize=14, color="black")
        if offset:
            for axes in (loss_axes, ppl_axes):
                axes.axvline(offset + 0.5, color="grey", linestyle=":")
        drawn.append({"stage": stage["name"], "epochs": len(epochs), "best_epoch": best})
        offset += len(epochs)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss (★ best epoch of each stage)")
    ppl_axes.set(xlabel="epoch", ylabel="validation perplexity", title="validation perplexity", yscale="log")
    loss_axes.legend(fontsize="small")
    ppl_axes.legend(fontsize="small")
    _save(figure, out)
    return {"title": title, "stages": drawn, "out": str(out)}


def plot_sweep(
    paths: Sequence[Path],
    x: str,
    metric_key: str,
    out: Path,
    lines: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """A metric against a swept option, one line per value of ``lines``, error bars over the other runs."""
    from pepler_cli.evaluation.comparison import load_rows

    _check_out(out)
    metric = _metric(metric_key)
    x_option, line_option = x.replace("-", "_"), lines.replace("-", "_") if lines else None
    points: dict[Any, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in load_rows(paths, key):
        if x_option not in row.config:
            raise PeplerError(f"{row.source}: its options have no {x!r} (--x names a training option)")
        if metric.key in row.scores:
            line = row.config.get(line_option) if line_option else metric.label
            points[_shown(line)][row.config[x_option]].append(row.scores[metric.key])
    if not points:
        raise PeplerError(f"none of the runs has {metric.label} scores")
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    title = f"{metric.label} against {x}" + (f" by {lines}" if lines else "")
    series = {}
    numeric = all(isinstance(v, (int, float)) for by_x in points.values() for v in by_x)
    for line, by_x in sorted(points.items(), key=lambda item: str(item[0])):
        xs = sorted(by_x, key=lambda v: (not isinstance(v, (int, float)), v if numeric else str(v)))
        means = [sum(by_x[v]) / len(by_x[v]) for v in xs]
        errors = [_std(by_x[v]) for v in xs]
        positions = xs if numeric else [str(v) for v in xs]
        axes.errorbar(positions, means, yerr=errors, marker="o", capsize=3, label=str(line))
        series[str(line)] = {"x": xs, "mean": means, "std": errors, "n": [len(by_x[v]) for v in xs]}
    if numeric and _spans_decades([v for by_x in points.values() for v in by_x]):
        axes.set_xscale("log")
    axes.set(xlabel=x, ylabel=f"{metric.label} {metric.arrow}", title=title)
    axes.legend(fontsize="small")
    _save(figure, out)
    return {"title": title, "series": series, "out": str(out)}


def plot_bars(
    paths: Sequence[Path], metric_key: str, out: Path, group_by: Sequence[str] = (), key: str | None = None
) -> dict[str, Any]:
    """One bar per run, or per group of runs (mean, with the standard deviation as an error bar)."""
    from pepler_cli.evaluation.comparison import load_rows
    from pepler_cli.evaluation.grouping import group_rows

    _check_out(out)
    metric = _metric(metric_key)
    rows = load_rows(paths, key)
    if group_by:
        groups = group_rows(rows, group_by).groups
        bars = [(g.name, g.mean.get(metric.key), g.std.get(metric.key, 0.0)) for g in groups]
    else:
        bars = [(row.label, row.scores.get(metric.key), 0.0) for row in rows]  # with its feature hint
    bars = [(name, value, error) for name, value, error in bars if value is not None]
    if not bars:
        raise PeplerError(f"none of the runs has {metric.label} scores")
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(4, 1.2 * len(bars)), 4))
    title = f"{metric.label} {metric.arrow}" + (f", mean over {', '.join(group_by)}" if group_by else "")
    axes.bar([b[0] for b in bars], [b[1] for b in bars], yerr=[b[2] for b in bars], capsize=4)
    axes.set(ylabel=metric.label, title=title)
    axes.tick_params(axis="x", labelrotation=30)
    _save(figure, out)
    return {"title": title, "bars": {name: value for name, value, _ in bars}, "out": str(out)}


def _shown(value: Any) -> Any:
    return "none" if value is None else value


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _spans_decades(values: Sequence[Any]) -> bool:
    positive = [float(v) for v in values if float(v) > 0]
    return len(positive) == len(values) and max(positive) / min(positive) >= 100
