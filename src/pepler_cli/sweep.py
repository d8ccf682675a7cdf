"""``pepler sweep SWEEP.yaml``: a grid of training options expanded into runs, each trained, generated and
scored, then one comparison of them all.

A sweep file (YAML; option names as on the command line, ``-`` or ``_``)::

    name: fig7-lambda              # the sweep's name (default: the file's name)
    data: data/tripadvisor         # the prepared dataset every cell trains on
    out: sweeps/fig7-lambda        # where the cells' runs, predictions and the comparison go
    train:                         # training options every cell shares (any `pepler train` option)
      config: examples/configs/pepler-mlp.yaml   # optional: a train config file under them (the grid may
                                                 # vary `config` too: one cell per config file)
      epochs: 10
    grid:                          # every combination of these becomes one cell
      rating-weight: [0.001, 0.01, 0.1]
      split: [1, 2, 3, 4, 5]
    generate: {}                   # options of `pepler generate` (optional)
    metrics: grounding,diversity   # `pepler score --metrics` for every cell (optional; default paper): paper,
                                   # all, or families and metric keys (a string or a list)
    by: [user-activity]            # `pepler score --by` for every cell (optional): a grouping or a list
    compare:                       # how the comparison is folded (optional)
      group-by: [split]
      baseline: {rating-weight: 0.01, split: 1}  # the cell whose group the others are tested against

Cells run one after another; re-running a sweep skips the cells already scored and resumes an interrupted
cell from its checkpoint; a cell scored without some of the sweep's ``metrics`` or ``by`` is scored again (its
run and predictions are kept). ``--jobs N`` runs N cells at once, each in its own process on its own CUDA
device.
The comparison is written to ``<out>/comparison.md``, ``comparison.json`` and ``comparison.tex`` (booktabs, for a
paper); with ``metrics`` it shows every metric the cells have (as ``pepler compare --all-metrics``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import atomic_write_text, describe, read_yaml_mapping

SWEEP_KEYS = ("name", "data", "out", "train", "grid", "generate", "metrics", "by", "compare")
PREDICTIONS = "preds.jsonl"
RUNS_DIR, PREDICTIONS_DIR = "runs", "preds"


@dataclass(frozen=True)
class Cell:
    """One combination of the grid."""

    values: tuple[tuple[str, Any], ...]  # (option, value) in the grid's order

    @property
    def name(self) -> str:
        parts = (f"{option.replace('_', '-')}={_short(value)}" for option, value in self.values)
        return re.sub(r"[^A-Za-z0-9=.,+-]", "_", ",".join(parts)) or "cell"

    def options(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass
class Sweep:
    name: str
    path: Path
    data: Path
    out: Path
    train: dict[str, Any]
    grid: dict[str, list[Any]]
    generate: dict[str, Any] = field(default_factory=dict)
    group_by: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    metrics: str = "paper"  # pepler score --metrics, for every cell
    by: list[str] = field(default_factory=list)  # pepler score --by, for every cell

    def cells(self) -> list[Cell]:
        names = list(self.grid)
        return [Cell(tuple(zip(names, combo))) for combo in itertools.product(*(self.grid[n] for n in names))]

    def run_dir(self, cell: Cell) -> Path:
        return self.out / RUNS_DIR / cell.name

    def predictions(self, cell: Cell) -> Path:
        return self.out / PREDICTIONS_DIR / cell.name / PREDICTIONS


@dataclass
class SweepResult:
    cells: int
    trained: list[str]
    skipped: list[str]
    comparison: Path


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        return Path(value).stem  # a config file: its name
    return str(value)


def _options(mapping: Any, where: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise PeplerError(f"{where}: expected a mapping of options")
    return {str(key).replace("-", "_"): value for key, value in mapping.items()}


def read_sweep(path: Path) -> Sweep:
    """The sweep file, checked: every grid axis a list of values, every cell's options valid for train."""
    document = read_yaml_mapping(path, "sweep file")
    unknown = sorted(set(map(str, document)) - set(SWEEP_KEYS))
    if unknown:
        raise PeplerError(f"{path}: unknown key {unknown[0]!r} (valid keys: {', '.join(SWEEP_KEYS)})")
    if not isinstance(document.get("data"), str):
        raise PeplerError(f"{path}: field 'data': the prepared dataset every cell trains on")
    grid = _options(document.get("grid"), f"{path}: field 'grid'")
    if not grid:
        raise PeplerError(f"{path}: field 'grid': give at least one option and its values")
    for option, values in grid.items():
        if not isinstance(values, list) or not values:
            raise PeplerError(f"{path}: field 'grid.{option}': expected a non-empty list of values")
    name = str(document.get("name") or Path(path).stem)
    compare = _options(document.get("compare"), f"{path}: field 'compare'")
    group_by = compare.get("group_by") or []
    group_by = [group_by] if isinstance(group_by, str) else [str(key).replace("-", "_") for key in group_by]
    baseline = _options(compare.get("baseline"), f"{path}: field 'compare.baseline'") or None
    sweep = Sweep(
        name=name,
        path=Path(path),
        data=Path(document["data"]),
        out=Path(document.get("out") or Path("sweeps") / name),
        train=_options(document.get("train"), f"{path}: field 'train'"),
        grid=grid,
        generate=_options(document.get("generate"), f"{path}: field 'generate'"),
        group_by=group_by,
        baseline=baseline,
        metrics=_metrics_option(document.get("metrics"), path),
        by=_by_option(document.get("by"), path),
    )
    splits = _split_count(sweep.data)
    for cell in sweep.cells():
        config = train_config(sweep, cell)  # a bad option fails now, not after hours of other cells
        if splits is not None and config.split > splits:
            raise PeplerError(
                f"{path}: cell {cell.name}: {sweep.data} has no split {config.split} (1–{splits})"
            )
    if baseline is not None and not group_by:
        raise PeplerError(f"{path}: field 'compare.baseline' needs 'compare.group-by' (e.g. [split])")
    if baseline is not None and _baseline_cell(sweep) is None:
        raise PeplerError(f"{path}: field 'compare.baseline': no cell of the grid has {baseline}")
    return sweep


def _split_count(data: Path) -> int | None:
    """How many splits the sweep's dataset has (cold-start splits included), None when it cannot tell yet
    (then the first cell's training names the problem)."""
    from pepler_cli.data.prepared.reading import read_manifest

    try:
        info = read_manifest(data).get("splits")
    except PeplerError:
        return None
    count = info.get("count") if isinstance(info, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _metrics_option(value: Any, path: Path) -> str:
    """The sweep's ``metrics``: ``paper`` when absent; a string or a list of names, checked as ``pepler score
    --metrics`` checks them (they add to the paper's metrics, which are always scored)."""
    from pepler_cli.evaluation.catalogue import select_beyond

    if value is None:
        return "paper"
    if isinstance(value, list) and value and all(isinstance(name, str) for name in value):
        value = ",".join(value)
    if not isinstance(value, str) or not value.strip():
        raise PeplerError(
            f"{path}: field 'metrics': expected paper, all, or families and metric keys (a string or a "
            f"list), got {describe(value)}"
        )
    try:
        select_beyond(value)
    except UsageError as error:
        raise PeplerError(f"{path}: field 'metrics': {error.message.removeprefix('--metrics: ')}") from None
    return value


def _by_option(value: Any, path: Path) -> list[str]:
    """The sweep's ``by``: none when absent; a grouping of ``pepler score --by`` or a list of them."""
    from pepler_cli.evaluation.breakdown import BY_CHOICES

    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise PeplerError(f"{path}: field 'by': expected a grouping or a list of them, got {describe(value)}")
    for name in names:
        if name not in BY_CHOICES:
            raise PeplerError(
                f"{path}: field 'by': unknown grouping {name!r} (choose from {', '.join(BY_CHOICES)})"
            )
    return list(dict.fromkeys(names))


def train_config(sweep: Sweep, cell: Cell) -> Any:
    """The cell's training options: the sweep's ``train`` (over its config file), then the cell's values."""
    from pepler_cli.config import TrainConfig, resolve
    from pepler_cli.plugins import get_model

    options = dict(sweep.train)
    cell_options = cell.options()
    # A grid may vary the config file itself (the paper's variants), over the sweep's shared one.
    config_file = cell_options.pop("config", options.pop("config", None))
    options.pop("config", None)
    flags = {**options, **cell_options, "data": sweep.data, "out": sweep.run_dir(cell)}
    flags["resume"] = True  # an interrupted cell continues from its checkpoint (a fresh one starts afresh)
    try:
        config = resolve(TrainConfig, Path(config_file) if config_file is not None else None, flags)
        return get_model(config.model).resolve(config)  # the model's own checks, before any cell trains
    except PeplerError as error:
        raise PeplerError(f"{sweep.path}: cell {cell.name}: {error.message}", error.exit_code) from None


def _baseline_cell(sweep: Sweep) -> Cell | None:
    wanted = sweep.baseline or {}
    for cell in sweep.cells():
        options = cell.options()
        if all(options.get(k) == v for k, v in wanted.items()):
            return cell
    return None


def _scored(sweep: Sweep, cell: Cell) -> bool:
    """Whether the cell's run holds the scores of its predictions."""
    manifest = sweep.run_dir(cell) / "manifest.yaml"
    if not manifest.is_file() or not (sweep.predictions(cell).is_file()):
        return False
    scores = read_yaml_mapping(manifest, "run manifest").get("scores")
    return isinstance(scores, dict) and bool(scores)


def _state(sweep: Sweep, cell: Cell) -> Literal["new", "rescore", "done"]:
    """What is left to do for the cell: everything (train or resume, generate, score), scoring its predictions
    again (they were scored without some of the sweep's ``metrics`` or ``by``), or nothing."""
    if not _scored(sweep, cell):
        return "new"
    manifest = read_yaml_mapping(sweep.run_dir(cell) / "manifest.yaml", "run manifest")
    predictions = str(sweep.predictions(cell).resolve())
    entries = [
        e for e in manifest["scores"].values() if isinstance(e, dict) and e.get("predictions") == predictions
    ]
    return "done" if entries and _scored_as_asked(sweep, entries[0]) else "rescore"


def _scored_as_asked(sweep: Sweep, entry: dict[str, Any]) -> bool:
    """Whether a run's scores entry holds every grouping of ``sweep.by`` and was scored with at least the
    metrics of ``sweep.metrics``, as its scores file records what was asked (a metric skipped for want of its
    model is not scored again on every re-run)."""
    from pepler_cli.evaluation.catalogue import select_beyond

    groups = entry.get("groups") if isinstance(entry.get("groups"), dict) else {}
    if not set(sweep.by) <= set(groups):
        return False
    wanted = {metric.key for metric in select_beyond(sweep.metrics)}
    if not wanted:
        return True
    scores_file = entry.get("scores_file")
    if not isinstance(scores_file, str) or not Path(scores_file).is_file():
        return False
    recorded = read_yaml_mapping(Path(scores_file), "scores file").get("metrics", "paper")
    try:
        return wanted <= {metric.key for metric in select_beyond(str(recorded))}
    except UsageError:
        return False  # names this pepler does not know: score again with the sweep's


def run_cell(sweep: Sweep, cell: Cell) -> bool:
    """Train (or resume), generate and score one cell, or only score its predictions again when the sweep now
    asks for more metrics or groupings; False when it was already finished."""
    from pepler_cli.config import GenerateConfig, ScoreConfig
    from pepler_cli.evaluation.score import score
    from pepler_cli.generation.generate import generate
    from pepler_cli.training.train import train

    state = _state(sweep, cell)
    if state == "done":
        return False
    predictions = sweep.predictions(cell)
    if state == "new":
        config = train_config(sweep, cell)
        if not (sweep.run_dir(cell) / "manifest.yaml").is_file():
            train(config, command=f"pepler sweep {sweep.path} (cell {cell.name})")
        options = {**sweep.generate, "run": sweep.run_dir(cell), "out": predictions, "overwrite": True}
        generate(GenerateConfig(**options))
    score(ScoreConfig(predictions=predictions, data=sweep.data, metrics=sweep.metrics, by=sweep.by))
    return True


def run_sweep(
    path: Path, jobs: int = 1, tell: Callable[[str], None] | None = None, only: str | None = None
) -> SweepResult:
    """Run every unfinished cell of the sweep at ``path`` and write its comparison."""
    sweep = read_sweep(path)
    tell = tell or (lambda message: None)
    cells = [c for c in sweep.cells() if only is None or c.name == only]
    if only is not None and not cells:
        raise UsageError(f"--cell {only}: no such cell in {path}")
    trained: list[str] = []
    skipped: list[str] = []
    for cell, ran in _run_all(sweep, cells, jobs, tell):
        (trained if ran else skipped).append(cell.name)
    comparison = write_comparison(sweep) if only is None else sweep.out / "comparison.md"
    return SweepResult(len(cells), trained, skipped, comparison)


def _run_all(
    sweep: Sweep, cells: list[Cell], jobs: int, tell: Callable[[str], None]
) -> Iterator[tuple[Cell, bool]]:
    if jobs <= 1:
        for number, cell in enumerate(cells, start=1):
            tell(f"cell {number}/{len(cells)}: {cell.name}")
            yield cell, run_cell(sweep, cell)
        return
    free: queue.Queue[str] = queue.Queue()
    for device in _cuda_devices(jobs):
        free.put(device)
    pending = [cell for cell in cells if _state(sweep, cell) != "done"]
    yield from ((cell, False) for cell in cells if cell not in pending)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_in_process, sweep, cell, free): cell for cell in pending}
        for future in concurrent.futures.as_completed(futures):
            future.result()
            tell(f"finished {futures[future].name}")
            yield futures[future], True


def _cuda_devices(jobs: int) -> list[str]:
    import torch

    count = torch.cuda.device_count()
    if count < jobs:
        raise UsageError(f"--jobs {jobs}: runs cells on separate CUDA devices, and this machine has {count}")
    return [str(index) for index in range(jobs)]


def _run_in_process(sweep: Sweep, cell: Cell, free: queue.Queue[str]) -> None:
    """One cell in its own process on a device no other running cell holds (taken from ``free``)."""
    device = free.get()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
    command = [sys.executable, "-m", "pepler_cli", "sweep", str(sweep.path), "--cell", cell.name]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        free.put(device)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise PeplerError(f"cell {cell.name}: {lines[-1] if lines else f'exit {done.returncode}'}")


def scored_runs(sweep: Sweep) -> list[Path]:
    """The run directories of the cells scored so far, in the grid's order."""
    return [sweep.run_dir(c) for c in sweep.cells() if _scored(sweep, c)]


def write_comparison(sweep: Sweep) -> Path:
    """``comparison.md``, ``comparison.json`` and ``comparison.tex`` of every scored cell, folded by the sweep's
    group-by; with the sweep's ``metrics``, every metric the cells have."""
    from pepler_cli.evaluation.catalogue import select_beyond
    from pepler_cli.evaluation.compare import render_comparison

    runs = scored_runs(sweep)
    if not runs:
        raise PeplerError(f"{sweep.out}: no cell of the sweep is scored yet")
    baseline_cell = _baseline_cell(sweep) if sweep.baseline is not None else None
    baseline = sweep.run_dir(baseline_cell) if baseline_cell is not None else None
    # Metrics beyond the paper asked for: every metric column the cells have, as `compare --all-metrics`.
    every = bool(select_beyond(sweep.metrics))
    markdown = render_comparison(
        runs, "markdown", all_metrics=every, group_by=sweep.group_by, baseline=baseline
    )
    as_json = render_comparison(runs, "json", all_metrics=every, group_by=sweep.group_by, baseline=baseline)
    out = sweep.out / "comparison.md"
    atomic_write_text(out, f"# {sweep.name}\n\n{markdown}")
    atomic_write_text(sweep.out / "comparison.json", str(as_json))
    latex = render_comparison(runs, "latex", all_metrics=every, group_by=sweep.group_by, baseline=baseline)
    atomic_write_text(sweep.out / "comparison.tex", str(latex))
    return out
