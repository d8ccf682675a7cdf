"""`pepler compare` on hand-made scores files and run directories: formats, best marks, gaps and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app

runner = CliRunner()

# Two complete score sets: A wins BLEU, FMR, R1-F and RMSE; B wins USR, FCR, DIV (lower) and MAE (lower);
# they tie on BLEU-4 and R2-F.
SCORES_A = {
    "bleu_1": 15.23,
    "bleu_4": 1.004,
    "usr": 0.2500,
    "usn": 250,
    "fmr": 0.10,
    "fcr": 0.20,
    "div": 2.5,
    "rouge_1_precision": 30.0,
    "rouge_1_recall": 20.0,
    "rouge_1_f": 22.0,
    "rouge_2_precision": 5.0,
    "rouge_2_recall": 4.0,
    "rouge_2_f": 4.5,
    "rouge_l_precision": 28.0,
    "rouge_l_recall": 19.0,
    "rouge_l_f": 21.0,
    "rmse": 1.001,
    "mae": 0.9,
}
SCORES_B = {
    **SCORES_A,
    "bleu_1": 14.0,
    "bleu_4": 0.996,  # prints as 1.00, like A: a tie
    "usr": 0.3,
    "usn": 300,
    "fmr": 0.08,
    "fcr": 0.25,
    "div": 1.2,
    "rouge_1_f": 21.5,
    "rmse": 1.2,
    "mae": 0.8,
}


def write_scores(
    path: Path,
    scores: dict[str, Any],
    run: dict[str, Any] | None = None,
    key: str | None = None,
    feature_hint: dict[str, Any] | None = None,
) -> Path:
    document: dict[str, Any] = {"format": "pepler-scores/1", "predictions": {"path": "preds.jsonl"}}
    if run is not None:
        document["run"] = run
    if key is not None:
        document["generation"] = {"key": key}
    if feature_hint is not None:
        document["feature_hint"] = feature_hint
    document["n"] = 1000
    document["scores"] = scores
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_run(
    directory: Path,
    name: str,
    entries: dict[str, dict[str, Any]] | None,
    *,
    strategy: str = "sequential",
    rating_head: str | None = "mf",
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": "pepler-run/1",
        "name": name,
        "config": {
            "prompt": "continuous",
            "strategy": strategy,
            "rating_head": rating_head,
            "rating_weight": 0.01,
            "backbone": "gpt2",
        },
        "files": {},
    }
    if entries is not None:
        manifest["scores"] = {
            key: {**scores, "n": 1000, "predictions": "/x/preds.jsonl", "scored": "2026-01-01T00:00:00+00:00"}
            for key, scores in entries.items()
        }
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return directory


def compare(*args: str) -> Any:
    return runner.invoke(app, ["compare", *args], env={"COLUMNS": "200"})


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A run directory (A, with a rating head) and a scores file of another run (B, prompt-only, no head)."""
    run = write_run(tmp_path / "runs" / "pepler-mf", "pepler-mf", {"split 1 test": SCORES_A})
    scores = write_scores(
        tmp_path / "preds-b.scores.yaml",
        SCORES_B,
        run={
            "path": "/somewhere/runs/prompt-only",
            "name": "prompt-only",
            "prompt": "continuous",
            "strategy": "prompt-only",
            "rating_head": None,
            "backbone": "gpt2-medium",
        },
        key="split 1 test",
    )
    return run, scores


def rows_of_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_json_rows_fields_and_best_marks(pair: tuple[Path, Path]) -> None:
    run, scores = pair
    result = compare(str(run), str(scores), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["pepler-mf", "prompt-only"]
    a, b = rows
    assert a["strategy"] == "sequential" and a["head"] == "mf" and a["backbone"] == "gpt2"
    assert b["strategy"] == "prompt-only" and b["head"] == "-" and b["backbone"] == "gpt2-medium"
    assert a["kind"] == "run" and b["kind"] == "scores"
    assert a["key"] == b["key"] == "split 1 test"
    assert a["scores"] == pytest.approx(SCORES_A)  # unrounded, every metric, no bookkeeping keys
    assert "predictions" not in a["scores"] and "n" not in a["scores"]
    # higher is better, except DIV, RMSE, MAE; bleu_4 and rouge_2_f print the same: both marked
    assert set(a["best"]) >= {"bleu_1", "fmr", "rouge_1_f", "rmse", "bleu_4", "rouge_2_f"}
    assert set(b["best"]) >= {"usr", "usn", "fcr", "div", "mae", "bleu_4", "rouge_2_f"}
    assert not {"usr", "fcr", "div", "mae"} & set(a["best"])
    assert not {"bleu_1", "fmr", "rouge_1_f", "rmse"} & set(b["best"])


def test_markdown_marks_best_in_bold_and_follows_the_paper_order(pair: tuple[Path, Path]) -> None:
    run, scores = pair
    result = compare(str(run), str(scores), "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == (
        "| name | model | prompt | strategy | head | backbone | BLEU-1 | BLEU-4 | USR | FMR | FCR | DIV | R1-F | R2-F "
        "| RMSE | MAE |"
    )
    assert lines[1].startswith("|---|---|---|---|---|---|---:|")
    assert lines[2] == (
        "| pepler-mf | pepler | continuous | sequential | mf | gpt2 | **15.23** | **1.00** | 0.2500 | **0.1000** | 0.2000 "
        "| 2.500 | **22.00** | **4.50** | **1.001** | 0.900 |"
    )
    assert lines[3] == (
        "| prompt-only | pepler | continuous | prompt-only | - | gpt2-medium | 14.00 | **1.00** | **0.3000** | 0.0800 "
        "| **0.2500** | **1.200** | 21.50 | **4.50** | 1.200 | **0.800** |"
    )
    assert len(lines) == 4  # both rows measured on the same key: no key column


def test_csv_rounds_like_the_paper(pair: tuple[Path, Path]) -> None:
    run, scores = pair
    result = compare(str(run), str(scores), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = rows_of_csv(result.stdout)
    assert list(rows[0]) == [
        "name", "model", "prompt", "strategy", "head", "backbone",
        "BLEU-1", "BLEU-4", "USR", "FMR", "FCR", "DIV", "R1-F", "R2-F", "RMSE", "MAE",
    ]  # fmt: skip
    assert rows[0]["BLEU-1"] == "15.23" and rows[0]["USR"] == "0.2500" and rows[0]["DIV"] == "2.500"
    assert rows[1]["RMSE"] == "1.200" and rows[1]["head"] == "-"


def test_table_is_the_default_and_highlights_best_in_bold_green(pair: tuple[Path, Path]) -> None:
    from pepler_cli.evaluation.comparison import load_rows, metric_columns, rich_table

    run, scores = pair
    result = compare(str(run), str(scores))
    assert result.exit_code == 0, result.output
    for text in (
        "pepler-mf",
        "prompt-only",
        "gpt2-medium",
        "BLEU-1",
        "R2-F",
        "MAE",
        "15.23",
        "0.2500",
        "1.200",
    ):
        assert text in result.stdout
    assert result.stderr == ""

    # The styles themselves, from the table the command prints.
    rows = load_rows([run, scores])
    table = rich_table(rows, metric_columns(rows))
    by_header = {column.header.split()[0]: column for column in table.columns}
    bleu_1 = list(by_header["BLEU-1"].cells)
    div = list(by_header["DIV"].cells)
    bleu_4 = list(by_header["BLEU-4"].cells)
    assert [str(c.style) for c in bleu_1] == ["bold green", ""]
    assert [str(c.style) for c in div] == ["", "bold green"]  # lower is better
    assert [str(c.style) for c in bleu_4] == ["bold green", "bold green"]  # a tie


def test_table_narrower_than_needed_is_printed_whole(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Squeezed into a narrow terminal rich would cut numbers to ellipses; the table keeps its width instead."""
    from pepler_cli.console import out_console

    monkeypatch.setattr(out_console, "_width", 60)
    run, scores = pair
    result = compare(str(run), str(scores))
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    for text in ("prompt-only", "gpt2-medium", "15.23", "0.2500", "2.500", "1.200", "0.800"):
        assert text in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) > 60


def test_missing_metrics_show_as_dash_and_are_ignored_for_best(tmp_path: Path) -> None:
    full = write_scores(
        tmp_path / "full.scores.yaml", {k: v for k, v in SCORES_A.items() if k not in ("rmse", "mae")}
    )
    partial_scores = {k: v for k, v in SCORES_B.items() if k not in ("div", "rmse", "mae", "bleu_1")}
    partial = write_scores(tmp_path / "partial.scores.yaml", partial_scores)
    result = compare(str(full), str(partial), "--format", "markdown")
    assert result.exit_code == 0, result.output
    header, _, first, second = result.stdout.strip().splitlines()
    assert "RMSE" not in header and "MAE" not in header  # no row has ratings
    # Without a run block: the file's stem names the row and the other columns are unknown.
    assert first.startswith("| full | ? | ? | ? | ? | ? | 15.23 |")
    # DIV only in the first row: a lone value is not marked best; BLEU-1 missing in the second.
    assert "| 2.500 |" in first and "**2.500**" not in first
    assert second.startswith("| partial | ? | ? | ? | ? | ? | - |")
    assert "| - |" in second

    rows = json.loads(compare(str(full), str(partial), "--format", "json").stdout)
    assert "div" not in rows[1]["scores"] and "div" not in rows[0]["best"]
    assert "fcr" in rows[1]["best"]


def test_rating_columns_appear_when_any_row_has_them(tmp_path: Path) -> None:
    text_only = write_scores(
        tmp_path / "t.scores.yaml", {k: v for k, v in SCORES_A.items() if k not in ("rmse", "mae")}
    )
    rated = write_scores(tmp_path / "r.scores.yaml", SCORES_B)
    rows = rows_of_csv(compare(str(text_only), str(rated), "--format", "csv").stdout)
    assert rows[0]["RMSE"] == "" and rows[1]["RMSE"] == "1.200"


def test_run_with_several_entries_gives_one_row_each_and_key_picks_one(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "run",
        "pepler",
        {"split 1 test": SCORES_A, "split 1 test, beam 4": SCORES_B},
    )
    result = compare(str(run), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = rows_of_csv(result.stdout)
    assert [(r["name"], r["key"]) for r in rows] == [
        ("pepler", "split 1 test"),
        ("pepler", "split 1 test, beam 4"),
    ]

    result = compare(str(run), "--key", "split 1 test, beam 4", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["key"] == "split 1 test, beam 4" and row["scores"]["bleu_1"] == 14.0

    result = compare(str(run), "--key", "split 2 test")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {run}: no scores under --key 'split 2 test' (it has 'split 1 test', 'split 1 test, beam 4')"
    )


def test_manifest_path_is_read_as_its_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "pepler", {"split 1 test": SCORES_A}, rating_head=None)
    result = compare(str(run / "manifest.yaml"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["head"] == "-"


def test_all_metrics_adds_precision_recall_and_rouge_l(pair: tuple[Path, Path]) -> None:
    run, scores = pair
    header = rows_of_csv(compare(str(run), str(scores), "--format", "csv", "--all-metrics").stdout)[0]
    assert list(header)[6:] == [
        "BLEU-1", "BLEU-4", "USR", "USN", "FMR", "FCR", "DIV", "R1-P", "R1-R", "R1-F",
        "R2-P", "R2-R", "R2-F", "RL-P", "RL-R", "RL-F", "RMSE", "MAE",
    ]  # fmt: skip
    assert header["USN"] == "250"


def test_markdown_escapes_pipes_in_names(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "s.scores.yaml", SCORES_A, run={"name": "a|b", "prompt": "continuous"})
    line = compare(str(path), "--format", "markdown").stdout.splitlines()[2]
    assert line.startswith("| a\\|b | pepler | continuous | ? | ? | ? |")


RUN_A = {
    "name": "pepler-mf",
    "prompt": "continuous",
    "strategy": "sequential",
    "rating_head": "mf",
    "backbone": "gpt2",
}
GIVEN = {"mode": "given", "predictor": None, "feature": None, "reads_test_record": True}
GIVEN_LABEL = "given feature (reads the test record)"
# The given row is far ahead on BLEU-1 and FMR (it read the test record's feature): never the best over the others.
SCORES_GIVEN = {**SCORES_A, "bleu_1": 30.0, "fmr": 0.9, "usr": 0.05, "div": 3.0}


@pytest.fixture
def with_given(pair: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """The pair, and a scores file of the same run generated with the record's own feature as the hint."""
    run, scores = pair
    given = write_scores(
        tmp_path / "given.scores.yaml",
        SCORES_GIVEN,
        run={**RUN_A, "path": str(run)},
        key="split 1 test, given feature",
        feature_hint=GIVEN,
    )
    return run, scores, given


def test_a_given_row_is_labelled_warned_about_and_never_best(with_given: tuple[Path, Path, Path]) -> None:
    run, scores, given = with_given
    result = compare(str(run), str(scores), str(given), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: pepler-mf (split 1 test, given feature) read the test record's own feature (--feature-hint "
        "given): an upper bound, not comparable with the other rows; marked † and never marked best"
    )
    _, _, first, second, third, blank, footnote = result.stdout.rstrip("\n").split("\n")
    assert f"| pepler-mf† [{GIVEN_LABEL}] | pepler | continuous |" in third
    assert "**" not in third  # not best at anything, though far ahead on BLEU-1 and FMR
    assert "| **15.23** |" in first and "| **0.1000** |" in first  # the best of the legitimate rows
    assert first.startswith("| pepler-mf | pepler | continuous |") and second.startswith("| prompt-only |")
    assert blank == "" and footnote == (
        "† read the test record's own feature (--feature-hint given): an upper bound, never marked best"
    )

    rows = json.loads(compare(str(run), str(scores), str(given), "--format", "json").stdout)
    assert [r["name"] for r in rows] == ["pepler-mf", "prompt-only", "pepler-mf"]  # the run's own name
    assert [r["reads_test_record"] for r in rows] == [False, False, True]
    assert rows[2]["feature_hint"] == GIVEN and rows[2]["best"] == []
    assert rows[0]["feature_hint"]["mode"] == "none"  # no feature_hint in the file: none
    assert {"bleu_1", "fmr"} <= set(rows[0]["best"])

    csv_rows = rows_of_csv(compare(str(run), str(scores), str(given), "--format", "csv").stdout)
    assert csv_rows[2]["name"] == f"pepler-mf† [{GIVEN_LABEL}]"
    latex = compare(str(run), str(scores), str(given), "--format", "latex").stdout
    assert f"pepler-mf\\textdagger{{}} [{GIVEN_LABEL}]" in latex and "% † read the test record" in latex

    table = compare(str(run), str(scores), str(given))
    assert table.exit_code == 0 and "warning: pepler-mf" in table.stderr
    assert "given feature" in table.stdout and "† read the test record" in table.stdout


def test_rows_that_all_read_the_test_record_compete_without_a_warning(tmp_path: Path) -> None:
    first = write_scores(tmp_path / "a.scores.yaml", SCORES_A, feature_hint=GIVEN)
    second = write_scores(tmp_path / "b.scores.yaml", SCORES_B, feature_hint=GIVEN)
    result = compare(str(first), str(second), "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    rows = json.loads(result.stdout)
    assert "bleu_1" in rows[0]["best"] and "usr" in rows[1]["best"]
    markdown = compare(str(first), str(second), "--format", "markdown").stdout
    assert markdown.rstrip().endswith(
        "† read the test record's own feature (--feature-hint given): an upper bound"
    )


def test_other_hints_are_named_after_the_run_without_a_warning(tmp_path: Path) -> None:
    predicted = {"mode": "predicted", "predictor": "learned", "feature": None, "reads_test_record": False}
    chosen = {"mode": "chosen", "predictor": None, "feature": "sound", "reads_test_record": False}
    run = write_run(
        tmp_path / "runs" / "pepler",
        "pepler",
        {"split 1 test": SCORES_A, "split 1 test, predicted feature (learned)": SCORES_B},
    )
    manifest_path = run / "manifest.yaml"
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    manifest["scores"]["split 1 test, predicted feature (learned)"]["feature_hint"] = predicted
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    chosen_file = write_scores(tmp_path / "sound.scores.yaml", SCORES_B, feature_hint=chosen)
    result = compare(str(run), str(chosen_file), "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    assert [row["name"] for row in rows_of_csv(result.stdout)] == [
        "pepler",
        "pepler [predicted feature (learned)]",
        "sound [chosen feature: sound]",
    ]


def test_a_malformed_hint_names_file_and_field(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "odd.scores.yaml", SCORES_A, feature_hint={"mode": "given", "feature": 3})
    line = one_error_line(compare(str(path)))
    assert line == f"error: {path}: field 'feature_hint.feature' must be a string or null, got a number"
    run = write_run(tmp_path / "runs" / "r", "r", {"split 1 test": SCORES_A})
    manifest = yaml.safe_load((run / "manifest.yaml").read_text(encoding="utf-8"))
    manifest["scores"]["split 1 test"]["feature_hint"] = "given"
    (run / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    line = one_error_line(compare(str(run)))
    assert line == (
        f"error: {run / 'manifest.yaml'}: field 'scores.split 1 test.feature_hint' must be a mapping with "
        "'mode', got a string"
    )


def one_error_line(result: Any, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert result.stdout == ""
    return lines[0]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    line = one_error_line(compare(str(tmp_path / "nope")), code=2)
    assert line == f"error: {tmp_path / 'nope'}: no such run directory or scores file"


def test_directory_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = one_error_line(compare(str(tmp_path / "empty")))
    assert line == f"error: {tmp_path / 'empty'}: neither a pepler run (no manifest.yaml) nor a scores file"


def test_run_without_scores(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "pepler", None)
    line = one_error_line(compare(str(run)))
    assert line.startswith(
        f"error: {run}: the run has no scores yet; score its predictions with `pepler score"
    )


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.scores.yaml"
    path.write_text("scores: [unclosed\n", encoding="utf-8")
    assert one_error_line(compare(str(path))).startswith(f"error: {path}: not valid YAML:")


def test_other_yaml_is_not_a_scores_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest-of-data.yaml"
    path.write_text("format: pepler-dataset/1\nname: x\n", encoding="utf-8")
    line = one_error_line(compare(str(path)))
    assert line == (
        f"error: {path}: neither a run directory nor a scores file "
        "(field 'format' is 'pepler-dataset/1', expected 'pepler-scores/1')"
    )


def test_non_numeric_metric_names_file_and_field(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "s.scores.yaml", {**SCORES_A, "fmr": "high"})
    assert (
        one_error_line(compare(str(path)))
        == f"error: {path}: field 'scores.fmr' must be a number, got a string"
    )
    run = write_run(tmp_path / "run", "r", {"split 1 test": {**SCORES_A, "div": [1]}})
    assert one_error_line(compare(str(run))) == (
        f"error: {run / 'manifest.yaml'}: field 'scores.split 1 test.div' must be a number, got a list"
    )


def test_bad_format_option_is_a_usage_error(pair: tuple[Path, Path]) -> None:
    run, _ = pair
    result = compare(str(run), "--format", "html")
    assert result.exit_code == 2


def test_every_option_has_help() -> None:
    result = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--key", "--format", "--all-metrics"):
        assert option in result.stdout
    assert "Which of a run's recorded scores to show" in result.stdout
