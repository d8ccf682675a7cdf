"""Explaining any pairs: the pairs-file format (data/pairs.py), `pepler generate --pairs`, `pepler explain`, and
`pepler score` on predictions without references. Runs on the NETE fixture (60 records, 8 users, 6 items)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.pairs import Pair, read_pairs
from pepler_cli.errors import PeplerError

runner = CliRunner()
NETE_TINY = Path(__file__).parent / "fixtures" / "nete-tiny"
TRAIN = [
    "--backbone",
    "gpt2-tiny",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--device",
    "cpu",
    "--logger",
    "none",
]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- the format -----------------------------------------------------------------------------------------


def test_json_lines_and_csv_read_alike(tmp_path):
    lines = _write_lines(
        tmp_path / "pairs.jsonl",
        [{"user": "u1", "item": "i1"}, {"user": 7, "item": "i2", "feature": "pool", "rating": 4}],
    )
    (tmp_path / "pairs.csv").write_text(
        "\ufeffuser,item,feature,reference,rating\nu1,i1,,,\n7,i2,pool,,4\n", encoding="utf-8"
    )
    expected = [Pair("u1", "i1"), Pair("7", "i2", feature="pool", rating=4.0)]
    assert read_pairs(lines).pairs == expected
    from_csv = read_pairs(tmp_path / "pairs.csv")
    assert from_csv.pairs == expected
    assert from_csv.where(1) == f"{tmp_path / 'pairs.csv'}: line 3"


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ('{"user": "u1"}\n', "p.jsonl", "line 1: missing field 'item'"),
        (
            '{"user": "u1", "item": "i1"}\n\n{"user": "u1", "iten": "i1"}\n',
            "p.jsonl",
            "line 3: field 'iten': unknown",
        ),
        ('{"user": "u1", "item": ["i1"]}\n', "p.jsonl", "line 1: field 'item' must be a string, got a list"),
        (
            '{"user": "u1", "item": "i1", "rating": "4"}\n',
            "p.jsonl",
            "line 1: field 'rating' must be a number",
        ),
        (
            '{"user": "u1", "item": "i1", "rating": NaN}\n',
            "p.jsonl",
            "field 'rating' must be a finite number",
        ),
        ('{"user": " ", "item": "i1"}\n', "p.jsonl", "line 1: field 'user' is empty"),
        ("[1, 2]\n", "p.jsonl", "line 1: expected a JSON object, got a list"),
        ('{"user": "u1",\n', "p.jsonl", "line 1: not valid JSON"),
        ("\n\n", "p.jsonl", "contains no pairs"),
        ("user,thing\nu1,i1\n", "p.csv", "line 1: the header has no column 'item'"),
        ("user,item\nu1,i1,extra\n", "p.csv", "line 2: more cells than the header has columns"),
        ("user,item,rating\nu1,i1,high\n", "p.csv", "line 2: field 'rating' must be a number, got 'high'"),
    ],
)
def test_a_bad_pairs_file_is_one_line_naming_file_line_and_field(tmp_path, text, name, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PeplerError) as error:
        read_pairs(path)
    assert error.value.message.startswith(str(path)) and message in error.value.message


# --- generate --pairs, explain ----------------------------------------------------------------------------


@pytest.fixture
def trained(rated_run) -> tuple[Path, Path, Path]:
    data, run = rated_run
    return data.parent, data, run


def _pairs_of(predictions: list[dict], *keys: str) -> list[dict]:
    return [{key: row[key] for key in ("user", "item", *keys)} for row in predictions]


def test_generate_pairs_equals_generate_on_the_same_pairs(trained, tmp_path):
    _, _, run = trained
    split = tmp_path / "split.jsonl"
    assert invoke("generate", run, "--out", split, "--device", "cpu", "--batch-size", "4").exit_code == 0
    expected = _rows(split)
    pairs = _write_lines(tmp_path / "pairs.jsonl", _pairs_of(expected, "reference", "feature", "rating"))
    out = tmp_path / "pairs-preds.jsonl"
    result = invoke("generate", run, "--pairs", pairs, "--out", out, "--device", "cpu", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "(pairs of" in result.output
    got = _rows(out)
    # The same pairs get the same explanations, decoded in batches of another size; the rating head's float
    # sums may differ in the last bit between batch sizes.
    for row in expected:
        row["predicted_rating"] = pytest.approx(row["predicted_rating"], rel=1e-6)
    assert got == expected
    assert "pairs give a feature: the run was trained without feature hints" in result.output
    meta = yaml.safe_load((tmp_path / "pairs-preds.meta.yaml").read_text())
    assert meta["pairs"]["count"] == len(expected) and meta["pairs"]["path"] == str(pairs)
    assert meta["dataset"]["split"] is None and meta["run"]["path"] == str(run.resolve())


def test_generate_pairs_without_references_scores_what_it_can(trained, tmp_path):
    _, data, run = trained
    users = (run / "users.txt").read_text().split()
    items = (run / "items.txt").read_text().split()
    pairs = _write_lines(
        tmp_path / "p.jsonl", [{"user": users[0], "item": items[1]}, {"user": users[2], "item": items[0]}]
    )
    out = tmp_path / "preds.jsonl"
    assert invoke("generate", run, "--pairs", pairs, "--out", out, "--device", "cpu").exit_code == 0
    rows = _rows(out)
    assert [(r["user"], r["item"]) for r in rows] == [(users[0], items[1]), (users[2], items[0])]
    assert all("reference" not in r and "feature" not in r and "predicted_rating" in r for r in rows)
    scored = invoke("score", out, "--data", data)
    assert scored.exit_code == 0, scored.output
    assert "2 of 2 predictions have no reference: BLEU-1, BLEU-4" in scored.output
    assert "have no feature: FMR" in scored.output
    scores = yaml.safe_load((tmp_path / "preds.scores.yaml").read_text())["scores"]
    assert "usr" in scores and "fcr" in scores
    assert not {"bleu_1", "rouge_1_f", "fmr", "rmse"} & set(scores)


def test_generate_pairs_unknown_ids_follow_unknown(trained, tmp_path):
    _, _, run = trained
    users = (run / "users.txt").read_text().split()
    items = (run / "items.txt").read_text().split()
    pairs = _write_lines(
        tmp_path / "p.jsonl",
        [{"user": users[0], "item": items[0]}, {"user": "stranger", "item": items[0]}],
    )
    out = tmp_path / "preds.jsonl"
    refused = invoke("generate", run, "--pairs", pairs, "--out", out, "--device", "cpu")
    assert refused.exit_code == 1 and not out.exists()
    assert (
        f"{pairs}: line 2: field 'user': 'stranger' is a user the run never saw in training"
        in one_line_error(refused)
    )
    skipped = invoke("generate", run, "--pairs", pairs, "--out", out, "--device", "cpu", "--unknown", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 pairs" in skipped.output and len(_rows(out)) == 1
    cold = invoke(
        "generate",
        run,
        "--pairs",
        pairs,
        "--out",
        out,
        "--overwrite",
        "--device",
        "cpu",
        "--cold-start",
        "mean",
    )
    assert cold.exit_code == 0, cold.output
    assert [r.get("cold") for r in _rows(out)] == [None, "user"]


def test_generate_pairs_refuses_a_split_too(trained, tmp_path):
    _, _, run = trained
    pairs = _write_lines(tmp_path / "p.jsonl", [{"user": "a", "item": "b"}])
    out = tmp_path / "preds.jsonl"
    both = invoke("generate", run, "--pairs", pairs, "--split", "test", "--out", out)
    assert both.exit_code == 2 and "--pairs explains the pairs of a file; --split" in one_line_error(both)


def test_explain_prints_one_explanation_and_the_rating(trained, tmp_path):
    _, _, run = trained
    split = tmp_path / "split.jsonl"
    assert invoke("generate", run, "--out", split, "--device", "cpu", "--limit", "1").exit_code == 0
    first = _rows(split)[0]
    result = invoke(
        "explain", run, "--user", first["user"], "--item", first["item"], "--device", "cpu", "--json"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["generated"] == first["generated"]
    assert shown["predicted_rating"] == pytest.approx(first["predicted_rating"])
    plain = invoke("explain", run, "--user", first["user"], "--item", first["item"], "--device", "cpu")
    assert plain.exit_code == 0 and plain.stdout.splitlines()[0] == first["generated"]
    assert plain.stdout.splitlines()[1].startswith("predicted rating: ")
    unknown = invoke("explain", run, "--user", "nobody", "--item", first["item"], "--device", "cpu")
    assert unknown.exit_code == 1 and "field 'user': 'nobody' is a user" in one_line_error(unknown)


def test_a_run_whose_dataset_is_gone_knows_its_users_from_its_own_files(trained, tmp_path):
    _, _, run = trained
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    manifest = yaml.safe_load((moved / "manifest.yaml").read_text())
    manifest["dataset"]["path"] = str(tmp_path / "gone")
    (moved / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    users = (run / "users.txt").read_text().split()
    items = (run / "items.txt").read_text().split()
    pairs = _write_lines(
        tmp_path / "p.jsonl", [{"user": users[0], "item": items[0]}, {"user": "x", "item": items[0]}]
    )
    out = tmp_path / "preds.jsonl"
    refused = invoke("generate", moved, "--pairs", pairs, "--out", out, "--device", "cpu")
    assert refused.exit_code == 1 and "'x' is a user that the run has no vector for" in one_line_error(
        refused
    )
    kept = invoke("generate", moved, "--pairs", pairs, "--out", out, "--device", "cpu", "--unknown", "skip")
    assert kept.exit_code == 0, kept.output
    meta = yaml.safe_load((tmp_path / "preds.meta.yaml").read_text())
    assert meta["dataset"]["path"] is None and len(_rows(out)) == 1
    cold = invoke("generate", moved, "--pairs", pairs, "--out", out, "--overwrite", "--cold-start", "mean")
    assert cold.exit_code == 1
    assert "--cold-start mean reads the training part, and the dataset the run was trained on is not at" in (
        one_line_error(cold)
    )
