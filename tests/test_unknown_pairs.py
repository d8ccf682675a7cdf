"""`generate` and `score` on (user, item) pairs the run never saw: `--unknown error` (default) or `skip`.

The run here is trained on a NETE dataset prepared with `--allow-unseen`: one user of split 1 has no training
record, so its vector was never trained, and its test pairs are unknown to the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.files import sha256_file

runner = CliRunner()
NETE_TINY = Path(__file__).parent / "fixtures" / "nete-tiny"
HINT = "pass --unknown skip to leave them out"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The one error line of a failed command (progress bars may precede it on stderr)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture(scope="module")
def unseen(tmp_path_factory) -> dict:
    """A dataset whose split 1 keeps one user out of training (prepared with --allow-unseen), a run trained on
    it, and what the test part holds."""
    from pepler_cli.data.nete import read_nete_reviews

    root = tmp_path_factory.mktemp("unseen")
    source = root / "nete"
    shutil.copytree(NETE_TINY, source)
    users = read_nete_reviews(source / "reviews.pickle").users
    split = source / "1"
    train = [int(t) for t in (split / "train.index").read_text().split()]
    test = [int(t) for t in (split / "test.index").read_text().split()]
    user = users[test[0]]
    (split / "train.index").write_text(" ".join(str(r) for r in train if users[r] != user))
    (split / "test.index").write_text(" ".join(map(str, test + [r for r in train if users[r] == user])))

    data = root / "data"
    prepared = invoke("prepare", "tripadvisor", "--source", source, "--out", data, "--allow-unseen")
    assert prepared.exit_code == 0, prepared.output
    run = root / "run"
    # No --allow-unseen here: the dataset's own opt-in (its manifest's splits.allow_unseen) stands.
    trained = invoke(
        "train", "--data", data, "--out", run, "--backbone", "gpt2-tiny", "--strategy", "prompt-only",
        "--epochs", "1", "--batch-size", "32", "--device", "cpu",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    dataset = load_prepared(data)
    test_records = [dataset.records[r] for r in dataset.splits[1][2]]
    users_trained, items_trained = dataset.training_ids(1)
    unknown = sum(r.user not in users_trained or r.item not in items_trained for r in test_records)
    assert user not in users_trained
    assert 0 < unknown < len(test_records)
    return {"data": data, "run": run, "user": user, "total": len(test_records), "unknown": unknown}


@pytest.fixture(scope="module")
def skipped_preds(unseen, tmp_path_factory) -> Path:
    preds = tmp_path_factory.mktemp("preds") / "preds.jsonl"
    result = invoke("generate", unseen["run"], "--out", preds, "--device", "cpu", "--unknown", "skip")
    assert result.exit_code == 0, result.output
    return preds


def test_generate_refuses_pairs_the_run_never_saw(unseen, tmp_path):
    preds = tmp_path / "preds.jsonl"
    result = invoke("generate", unseen["run"], "--out", preds, "--device", "cpu")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert (
        f"{unseen['run']}: {unseen['unknown']} of {unseen['total']} test pairs of {unseen['data']} (split 1) have "
        f"a user or item the run never saw in training (split 1, train) (first: user {unseen['user']}"
    ) in line
    assert line.endswith(HINT)
    assert not preds.exists()


def test_generate_skip_leaves_them_out_and_says_how_many(unseen, skipped_preds):
    rows = [json.loads(line) for line in skipped_preds.read_text().splitlines()]
    assert len(rows) == unseen["total"] - unseen["unknown"]
    assert all(row["user"] != unseen["user"] for row in rows)
    meta = yaml.safe_load(skipped_preds.with_name("preds.meta.yaml").read_text())
    assert meta["predictions"]["skipped_unknown"] == unseen["unknown"]
    assert meta["config"]["unknown"] == "skip"


def test_generate_skip_prints_the_count(unseen, tmp_path):
    result = invoke(
        "generate", unseen["run"], "--out", tmp_path / "p.jsonl", "--unknown", "skip", "--limit", "99"
    )
    assert result.exit_code == 0, result.output
    assert f"skipped {unseen['unknown']} pairs whose user or item the run never saw" in result.output


def test_generate_on_another_dataset_checks_which_ids_have_a_vector(unseen, tmp_path):
    """On other data the run can only tell which ids it has a vector for (users.txt, items.txt)."""
    dataset = load_prepared(unseen["data"])
    test = dataset.splits[1][2]
    records = list(dataset.records)
    stranger = next(n for n in test if records[n].user != unseen["user"])
    records[stranger] = records[stranger]._replace(user="stranger")
    other = tmp_path / "other"
    write_prepared(
        other,
        records,
        dataset.splits,
        name="other",
        source={"kind": "nete", "path": "x"},
        splits_info={**dataset.manifest["splits"], "allow_unseen": True},
    )
    result = invoke(
        "generate", unseen["run"], "--data", other, "--out", tmp_path / "p.jsonl", "--device", "cpu"
    )
    assert result.exit_code == 1
    line = one_line_error(result)
    # The run's unseen user has a vector (untrained): on other data only the stranger is unknown.
    assert (
        f"1 of {unseen['total']} test pairs of {other} (split 1) have a user or item that the run has no "
        in line
    )
    assert "(first: user stranger)" in line and line.endswith(HINT)


def with_extra_prediction(preds: Path, out: Path, user: str) -> Path:
    """A copy of ``preds`` and its sidecar, plus one prediction by ``user``; the sidecar's sha256 updated so
    it still links the predictions to their run."""
    rows = preds.read_text().splitlines()
    extra = {**json.loads(rows[0]), "user": user}
    out.write_text("\n".join([*rows, json.dumps(extra)]) + "\n")
    meta = yaml.safe_load(preds.with_name("preds.meta.yaml").read_text())
    meta["predictions"]["sha256"] = sha256_file(out)
    out.with_name(out.name.removesuffix(".jsonl") + ".meta.yaml").write_text(yaml.safe_dump(meta))
    return out


def test_score_of_known_pairs_passes(unseen, skipped_preds, tmp_path):
    result = invoke("score", skipped_preds, "--data", unseen["data"], "--json", "--no-record",
                    "--out", tmp_path / "s.yaml")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == unseen["total"] - unseen["unknown"]


def test_score_refuses_a_prediction_the_run_never_trained(unseen, skipped_preds, tmp_path):
    preds = with_extra_prediction(skipped_preds, tmp_path / "preds.jsonl", unseen["user"])
    n = unseen["total"] - unseen["unknown"] + 1
    result = invoke("score", preds, "--data", unseen["data"], "--no-record")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert (
        f"{preds}: 1 of {n} predictions have a user or item the run never saw in training ({unseen['data']}, "
        f"split 1, train) (first: user {unseen['user']})"
    ) in line
    assert line.endswith(HINT)
    assert not preds.with_name("preds.scores.yaml").exists()


def test_score_skip_scores_the_rest_and_says_how_many(unseen, skipped_preds, tmp_path):
    preds = with_extra_prediction(skipped_preds, tmp_path / "preds.jsonl", unseen["user"])
    n = unseen["total"] - unseen["unknown"] + 1
    result = invoke("score", preds, "--data", unseen["data"], "--no-record", "--json", "--unknown", "skip")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == n - 1
    assert f"note: skipped 1 of {n} predictions whose user or item the run never saw" in result.stderr
    document = yaml.safe_load(preds.with_name("preds.scores.yaml").read_text())
    assert document["skipped_unknown"] == 1 and document["n"] == n - 1


def test_score_without_the_runs_dataset_asks_the_run_for_its_vectors(unseen, skipped_preds, tmp_path):
    features = tmp_path / "features.txt"
    features.write_text((unseen["data"] / "features.txt").read_text())
    # The unseen user has an (untrained) vector: without the dataset, the run cannot tell it apart.
    known = with_extra_prediction(skipped_preds, tmp_path / "known.jsonl", unseen["user"])
    assert invoke("score", known, "--features", features, "--no-record").exit_code == 0
    stranger = with_extra_prediction(skipped_preds, tmp_path / "stranger.jsonl", "stranger")
    result = invoke("score", stranger, "--features", features, "--no-record")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert (
        f"have a user or item that the run has no vector for ({unseen['run']}: users.txt, items.txt)" in line
    )
    assert "(first: user stranger)" in line


def test_score_of_predictions_from_elsewhere_checks_nothing(unseen, skipped_preds, tmp_path):
    preds = tmp_path / "elsewhere.jsonl"
    rows = skipped_preds.read_text().splitlines()
    preds.write_text("\n".join([*rows, json.dumps({**json.loads(rows[0]), "user": "stranger"})]) + "\n")
    result = invoke("score", preds, "--data", unseen["data"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == len(rows) + 1


def test_unknown_takes_error_or_skip_only(unseen, tmp_path):
    result = invoke("generate", unseen["run"], "--out", tmp_path / "p.jsonl", "--unknown", "keep")
    assert result.exit_code == 2 and "option unknown (--unknown)" in result.output
