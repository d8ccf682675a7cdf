"""`pepler compare --group-by split --baseline RUN`: means ± std over splits and Student's t-test, as Table 5."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.runs import RUN_FORMAT

runner = CliRunner()
# BLEU-1 of five splits: the baseline, and a method ahead on every split by 1 ± a little.
BASE = [10.0, 11.0, 10.5, 9.5, 10.2]
BETTER = [11.1, 11.9, 11.6, 10.4, 11.3]


def make_run(root: Path, name: str, split: int, bleu: float, **config) -> Path:
    run = root / name
    run.mkdir(parents=True)
    options = {"split": split, "prompt": "continuous", "strategy": "sequential", "backbone": "gpt2",
               "rating_head": None, "learning_rate": 0.001, "out": str(run), **config}  # fmt: skip
    manifest = {
        "format": RUN_FORMAT,
        "name": name,
        "config": options,
        "scores": {f"split {split} test": {"bleu_1": bleu, "usr": 0.5, "div": 1.0 + split / 10}},
    }
    (run / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return run


@pytest.fixture
def runs(tmp_path) -> dict[str, list[Path]]:
    base = [make_run(tmp_path, f"pepler-s{k}", k, b) for k, b in enumerate(BASE, 1)]
    better = [make_run(tmp_path, f"mlp-s{k}", k, b, rating_head="mlp") for k, b in enumerate(BETTER, 1)]
    return {"base": base, "better": better}


def invoke(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_runs_of_five_splits_fold_into_mean_and_std_with_a_paired_test(runs):
    paths = [*runs["base"], *runs["better"]]
    result = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["test"] == "paired t-test over split"
    base, better = document["groups"]
    assert (base["name"], base["n"], base["baseline"]) == ("pepler", 5, True)
    assert better["name"] == "mlp" and better["varied"] == {"split": [1, 2, 3, 4, 5]}
    assert better["mean"]["bleu_1"] == pytest.approx(statistics.mean(BETTER))
    assert better["std"]["bleu_1"] == pytest.approx(statistics.stdev(BETTER))
    assert better["p"]["bleu_1"] == pytest.approx(stats.ttest_rel(BETTER, BASE).pvalue)
    assert better["marks"] == {"bleu_1": "**"}  # USR identical on every split: no test, no mark
    assert "usr" not in better["p"]
    # DIV differs by split but equally for both groups: paired differences are all zero.
    assert "div" not in better["marks"]


def test_the_markdown_and_latex_tables_show_mean_std_marks_and_name_the_test(runs):
    paths = [*runs["base"], *runs["better"]]
    markdown = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    mean, std = statistics.mean(BETTER), statistics.stdev(BETTER)
    assert f"{mean:.2f} ± {std:.2f}**" in markdown.output
    assert "| pepler (5 split) [baseline] | 5 |" in markdown.output
    assert "paired t-test over split against pepler: ** p < 0.01, * p < 0.05" in markdown.output
    latex = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "latex")
    assert latex.exit_code == 0, latex.output
    lines = latex.output.splitlines()
    assert lines[0] == "\\begin{tabular}{ll" + "r" * 8 + "}" and lines[1] == "\\toprule"
    assert "\\midrule" in lines and "\\bottomrule" in lines and "\\end{tabular}" in lines
    assert f"${mean:.2f} \\pm {std:.2f}$\\textsuperscript{{**}}" in latex.output


def test_unmatched_splits_use_welchs_test(runs):
    paths = [*runs["base"], *runs["better"][:3]]
    result = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "json")
    document = json.loads(result.output)
    assert document["test"] == "Welch's t-test"
    expected = stats.ttest_ind(BETTER[:3], BASE, equal_var=False).pvalue
    assert document["groups"][1]["p"]["bleu_1"] == pytest.approx(expected)


def test_runs_differing_in_another_option_stay_apart(runs, tmp_path):
    other = make_run(tmp_path / "lr", "pepler-lr-s1", 1, 12.0, learning_rate=0.01)
    result = invoke(*runs["base"], other, "--group-by", "split", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.output.strip().splitlines()
    assert rows[0].startswith("group,n,BLEU-1 mean,BLEU-1 std,BLEU-1 p")
    assert len(rows) == 3 and rows[2].startswith("pepler-lr (1 split),1,12.00,,")


def test_ungrouped_latex_bolds_the_best_and_escapes_names(runs, tmp_path):
    odd = make_run(tmp_path / "odd", "my_run&1", 1, 99.0)
    result = invoke(runs["base"][0], odd, "--format", "latex")
    assert result.exit_code == 0, result.output
    assert "my\\_run\\&1" in result.output and "\\textbf{99.00}" in result.output


def test_baseline_needs_group_by_and_must_be_compared(runs, tmp_path):
    alone = invoke(*runs["base"], "--baseline", runs["base"][0])
    assert alone.exit_code == 2 and "--baseline: give --group-by too" in alone.output
    stranger = invoke(*runs["base"], "--group-by", "split", "--baseline", tmp_path / "elsewhere")
    assert stranger.exit_code == 2 and "not one of the compared runs" in stranger.output


def test_a_shift_without_spread_is_significant_and_no_difference_is_not_tested(tmp_path):
    base = [make_run(tmp_path, f"a-s{k}", k, b) for k, b in enumerate(BASE, 1)]
    shifted = [make_run(tmp_path, f"b-s{k}", k, b + 1.0, rating_head="mf") for k, b in enumerate(BASE, 1)]
    result = invoke(*base, *shifted, "--group-by", "split", "--baseline", base[0], "--format", "json")
    group = json.loads(result.output)["groups"][1]
    assert group["marks"] == {"bleu_1": "**"} and group["p"]["bleu_1"] == 0.0
    assert "div" not in group["p"]  # the same DIV on every split for both


def test_a_sweeps_cells_are_named_by_what_is_not_grouped(tmp_path):
    runs = [make_run(tmp_path, f"learning-rate=0.01,split={k}", k, b) for k, b in enumerate(BASE[:2], 1)]
    result = invoke(*runs, "--group-by", "split", "--format", "json")
    assert [g["name"] for g in json.loads(result.output)["groups"]] == ["learning-rate=0.01"]


def _with_hint(run: Path, hint: dict) -> Path:
    """Give every scores entry of ``run`` the ``feature_hint`` `pepler score` copies from the sidecar."""
    manifest = yaml.safe_load((run / "manifest.yaml").read_text(encoding="utf-8"))
    for entry in manifest["scores"].values():
        entry["feature_hint"] = hint
    (run / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return run


GIVEN = {"mode": "given", "predictor": None, "feature": None, "reads_test_record": True}


def test_a_given_group_is_labelled_and_not_tested_against_a_legitimate_baseline(runs, tmp_path):
    given = [
        _with_hint(make_run(tmp_path / "given", f"given-s{k}", k, b + 5, rating_head="mlp"), GIVEN)
        for k, b in enumerate(BASE, 1)
    ]
    paths = [*runs["base"], *runs["better"], *given]
    result = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "json")
    assert result.exit_code == 0, result.output
    assert "warning: given-s1 (split 1 test), given-s2 (split 2 test)" in result.stderr
    base, better, upper = json.loads(result.stdout)["groups"]
    assert better["marks"] == {"bleu_1": "**"}  # legitimate against legitimate: tested as before
    assert upper["name"] == "given† [given feature (reads the test record)]" and upper["reads_test_record"]
    assert upper["p"] == {} and upper["marks"] == {}  # five points ahead on every split, yet no mark
    markdown = invoke(*paths, "--group-by", "split", "--baseline", runs["base"][0], "--format", "markdown")
    assert (
        "† read the test record's own feature (--feature-hint given): an upper bound, tested only against a "
        "baseline that read it too"
    ) in markdown.stdout
    # Against a given baseline only the given groups are tested.
    on_given = invoke(*paths, "--group-by", "split", "--baseline", given[0], "--format", "json")
    base, better, upper = json.loads(on_given.stdout)["groups"]
    assert upper["baseline"] and base["p"] == {} and better["p"] == {}


def test_the_same_runs_with_and_without_a_hint_never_fold_together(runs, tmp_path):
    hinted = [
        _with_hint(make_run(tmp_path / "h", f"pepler-s{k}", k, b), GIVEN) for k, b in enumerate(BASE, 1)
    ]
    result = invoke(*runs["base"], *hinted, "--group-by", "split", "--format", "json")
    names = [g["name"] for g in json.loads(result.stdout)["groups"]]
    assert names == ["pepler", "pepler† [given feature (reads the test record)]"]
