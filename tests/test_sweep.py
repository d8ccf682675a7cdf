"""`pepler sweep`: a tiny grid (two splits × two λ) trained, generated, scored (with metrics beyond the paper
and by user activity) and compared end to end."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app

runner = CliRunner()


def write_sweep(tmp_path: Path, data: Path, **changes) -> Path:
    document = {
        "name": "tiny",
        "data": str(data),
        "out": str(tmp_path / "sweep"),
        "train": {
            "backbone": "gpt2-tiny",
            "epochs": 1,
            "batch-size": 16,
            "rating-head": "mlp",
            "strategy": "joint",
        },
        "grid": {"rating-weight": [0.01, 1.0], "split": [1, 2]},
        "generate": {"limit": 4},
        "compare": {"group-by": ["split"], "baseline": {"rating-weight": 0.01, "split": 1}},
        **changes,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_tiny_sweep_runs_every_cell_and_compares_them(nete_tiny_data, tmp_path):
    sweep = write_sweep(tmp_path, nete_tiny_data, metrics=["grounding", "distinct_2"], by="user-activity")
    first = runner.invoke(app, ["sweep", str(sweep)])
    assert first.exit_code == 0, first.output
    assert "4 cells: 4 run, 0 already finished" in first.output
    runs = sorted(p.name for p in (tmp_path / "sweep" / "runs").iterdir())
    assert runs == [
        "rating-weight=0.01,split=1", "rating-weight=0.01,split=2", "rating-weight=1,split=1",
        "rating-weight=1,split=2",
    ]  # fmt: skip
    created = {}
    for name in runs:
        manifest = yaml.safe_load((tmp_path / "sweep" / "runs" / name / "manifest.yaml").read_text())
        (entry,) = manifest["scores"].values()  # scored, and the score recorded in the run
        # The sweep's `metrics` and `by` reached every cell's scoring (the split's training part from the
        # predictions' sidecar: iFMR needs it).
        assert {"ifmr", "d_fhr", "feature_precision", "distinct_2"} <= set(entry), name
        assert "distinct_1" not in entry and list(entry["groups"]) == ["user-activity"], name
        created[name] = manifest["created"]
    comparison = json.loads((tmp_path / "sweep" / "comparison.json").read_text())
    assert comparison["group_by"] == ["split"]
    assert [(g["n"], g["baseline"]) for g in comparison["groups"]] == [(2, True), (2, False)]
    assert comparison["groups"][1]["varied"] == {"split": [1, 2]}
    assert {"ifmr", "distinct_2"} <= set(comparison["groups"][0]["mean"])
    markdown = (tmp_path / "sweep" / "comparison.md").read_text()
    assert markdown.startswith("# tiny") and "mean ± sample standard deviation over split" in markdown
    header = markdown.splitlines()[2]
    # Metrics beyond the paper asked for: every metric column the cells have (as compare --all-metrics).
    assert all(f"| {label} |" in header for label in ("USN", "R1-P", "iFMR", "F-Prec", "D-FHR", "Dist-2"))
    latex = (tmp_path / "sweep" / "comparison.tex").read_text()  # the same table for a paper
    assert "\\toprule" in latex and "Dist-2" in latex

    again = runner.invoke(app, ["sweep", str(sweep)])  # a re-run resumes: nothing left to do
    assert again.exit_code == 0, again.output
    assert "4 cells: 0 run, 4 already finished" in again.output

    # Asking for more metrics or groupings scores the cells' predictions again; nothing is trained again.
    predictions = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "preds").glob("*/preds.jsonl")}
    sweep = write_sweep(
        tmp_path, nete_tiny_data, metrics="grounding,distinct_1", by=["user-activity", "rating"]
    )
    more = runner.invoke(app, ["sweep", str(sweep)])
    assert more.exit_code == 0, more.output
    assert "4 cells: 4 run, 0 already finished" in more.output
    assert {p: p.stat().st_mtime_ns for p in predictions} == predictions  # not generated again
    for name in runs:
        manifest = yaml.safe_load((tmp_path / "sweep" / "runs" / name / "manifest.yaml").read_text())
        assert manifest["created"] == created[name], name  # the same run
        (entry,) = manifest["scores"].values()
        assert "distinct_1" in entry and list(entry["groups"]) == ["user-activity", "rating"], name

    # The report of the sweep's folder folds its runs as the sweep does.
    report = runner.invoke(app, ["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<td>rating-weight=0.01</td><td>2</td>" in page and "over split" in page
    assert "<h2>Beyond the paper</h2>" in page and "<th>iFMR ↑</th>" in page
    assert "<h2>Who gets good explanations</h2>" in page
    assert "<h3>rating-weight=0.01,split=1 (split 1 test): by user-activity</h3>" in page


def test_a_bad_sweep_is_one_line_before_any_training(nete_tiny_data, tmp_path):
    cases = [
        ({"grid": {"split": []}}, "field 'grid.split': expected a non-empty list of values"),
        ({"grid": {"split": [1, 9]}}, f"cell split=9: {nete_tiny_data} has no split 9 (1–5)"),
        ({"grid": {"split": [1, 0]}}, "cell split=0: option split (--split)"),
        ({"colour": "red"}, "unknown key 'colour'"),
        (
            {"compare": {"baseline": {"split": 3}, "group-by": ["split"]}},
            "no cell of the grid has {'split': 3}",
        ),
        ({"metrics": "grounding,bleu_9"}, "field 'metrics': unknown metric 'bleu_9'"),
        ({"metrics": 3}, "field 'metrics': expected paper, all, or families and metric keys"),
        ({"by": ["rating", "colour"]}, "field 'by': unknown grouping 'colour' (choose from user-activity,"),
        ({"by": {"rating": 1}}, "field 'by': expected a grouping or a list of them"),
    ]
    for changes, expected in cases:
        result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, nete_tiny_data, **changes))])
        assert result.exit_code != 0 and expected in result.output, (changes, result.output)
        assert "Traceback" not in result.output
        assert not (tmp_path / "sweep").exists()


def test_the_papers_sweeps_are_valid(monkeypatch):
    from pepler_cli.sweep import read_sweep

    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(repo)  # their paths are relative to the repository, where they are run from
    sizes = {
        path.stem: len(read_sweep(path).cells())
        for path in sorted((repo / "examples" / "sweeps").glob("*.yaml"))
    }
    assert sizes == {
        "fig6-learning-rate": 15, "fig7-rating-weight": 18, "fig9-model-size": 6, "table5": 15, "table5-all": 40,
        "table5-bundled": 18, "table5-bundled-whole": 4,
    }  # fmt: skip


def test_jobs_beyond_the_cuda_devices_is_refused(nete_tiny_data, tmp_path):
    import torch

    jobs = max(2, torch.cuda.device_count() + 1)
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, nete_tiny_data)), "--jobs", str(jobs)])
    assert result.exit_code == 2 and f"--jobs {jobs}: runs cells on separate CUDA devices" in result.output
    assert not (tmp_path / "sweep" / "runs").exists()
