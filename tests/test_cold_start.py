"""Cold start, end to end: `prepare --cold-start K` splits, training on them, and `generate --cold-start`.

The splits are checked on synthetic records (every property the split promises); the vectors each
`--cold-start` choice gives are compared as tensors, on hand-built tables and on a real tiny run; the CLI
through Typer's CliRunner on the NETE fixture (60 records, 8 users, 6 items).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.cold_start import ColdSplit, ColdStartSpec, add_cold_splits, cold_split
from pepler_cli.data.feature_prompts import FeatureIndex
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import Record
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.data.splits import check_split
from pepler_cli.errors import PeplerError
from pepler_cli.generation.cold_start import (
    ColdIds,
    Trained,
    apply_cold_start,
    check_method,
    find_cold,
    history_features,
    neighbour_vectors,
    read_history,
    with_history,
)
from pepler_cli.modeling.build import build_model
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.predictions import Prediction, read_predictions, write_predictions
from pepler_cli.run_model import load_run

runner = CliRunner()
NETE_TINY = Path(__file__).parent / "fixtures" / "nete-tiny"
TRAIN = ["--backbone", "gpt2-tiny", "--epochs", "1", "--batch-size", "32", "--device", "cpu"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The one error line of a failed command (progress bars may precede it on stderr)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def synthetic(
    n_users: int = 60, n_items: int = 25, n: int = 600, seed: int = 3
) -> tuple[list[str], list[str]]:
    """Records by users on items, with a long tail of users (a few very active)."""
    rng = random.Random(seed)
    users = [f"u{min(int(rng.paretovariate(1.2)) - 1, n_users - 1)}" for _ in range(n)]
    # Every user and item occurs: the first records go round them all.
    users[:n_users] = [f"u{k}" for k in range(n_users)]
    items = [f"i{rng.randrange(n_items)}" for _ in range(n)]
    items[:n_items] = [f"i{k}" for k in range(n_items)]
    return users, items


# ------------------------------------------------------------------------------------------ the splits


@pytest.mark.parametrize("kind", ["user", "item"])
@pytest.mark.parametrize("k_max", [0, 2])
def test_a_cold_split_holds_what_it_promises(kind, k_max):
    users, items = synthetic()
    own, other = (users, items) if kind == "user" else (items, users)
    (train, validation, test), cold, never_seen = cold_split(own, other, k_max, "1234/6")

    assert sorted(train + validation + test) == list(range(len(own)))  # every record once
    assert not set(train) & set(validation) and not set(train) & set(test) and not set(validation) & set(test)
    in_train = Counter(own[r] for r in train)
    cold_ids = {own[r] for r in test}
    assert len(cold_ids) == cold > 1
    assert all(in_train[c] <= k_max for c in cold_ids)  # at most K training records each
    assert sum(in_train[c] == 0 for c in cold_ids) == never_seen > 0  # 0 = never seen is among them
    if k_max:
        assert any(in_train[c] > 0 for c in cold_ids)
    assert not cold_ids & {own[r] for r in validation}  # validation holds warm ones only
    assert {other[r] for r in test} <= {other[r] for r in train}  # the other side of the test is trained
    warm = [r for r in range(len(own)) if own[r] not in cold_ids]
    assert {own[r] for r in warm} <= set(in_train)  # every warm one is trained
    cold_records = len(own) - len(warm)
    assert 0.05 <= cold_records / len(own) <= 0.15  # about 10% of the records are cold ones'
    # Training holds about 8/9 of the warm records.
    assert abs(len(train) - sum(in_train[c] for c in cold_ids) - round(len(warm) * 8 / 9)) <= 1


def test_cold_splits_are_deterministic_and_seeded():
    users, items = synthetic()
    spec = ColdStartSpec(max_train_records=2, seed=1234)
    first, info = add_cold_splits("d", {1: ([0], [1], [2])}, users, items, spec)
    again, _ = add_cold_splits("d", {1: ([0], [1], [2])}, users, items, spec)
    other, _ = add_cold_splits("d", {1: ([0], [1], [2])}, users, items, ColdStartSpec(2, 99))
    assert first == again
    assert first[2] != other[2] and first[3] != other[3]
    assert sorted(first) == [1, 2, 3]  # numbered after the regular ones
    assert info[2] == {
        "kind": "user",
        "max_train_records": 2,
        "seed": 1234,
        "cold_users": info[2]["cold_users"],
        "never_seen": info[2]["never_seen"],
    }
    assert info[3]["kind"] == "item" and info[3]["cold_items"] > 0


def test_a_user_holding_an_items_last_records_stays_warm():
    # u0 alone reviewed i9: making it cold would leave i9 untrained, so u1 (or u2...) is taken instead.
    users = ["u0", "u0"] + [f"u{1 + k % 9}" for k in range(18)]
    items = ["i9", "i0"] + ["i0"] * 18
    (train, _, test), _, _ = cold_split(users, items, 0, "s")
    assert "u0" not in {users[r] for r in test}
    assert {items[r] for r in test} <= {items[r] for r in train}


def test_data_too_small_for_a_cold_one_is_one_line():
    # Every item has one record: no user can be cold without leaving an item untrained.
    users, items = ["a", "b", "c"], ["x", "y", "z"]
    with pytest.raises(PeplerError, match=r"^data/x: --cold-start: no user can be held out for split 2"):
        add_cold_splits("data/x", {1: ([0, 1, 2], [], [])}, users, items, ColdStartSpec(1, 1))


def test_check_split_lets_the_cold_kind_of_a_cold_test_part_be_unseen():
    users = ["u0", "u1", "u0", "u1", "u2", "u2"]
    items = ["i0", "i1", "i1", "i0", "i0", "i9"]
    split = ([0, 1], [2, 3], [4])  # the test's user u2 is never seen in training
    with pytest.raises(PeplerError, match="a user never seen in training"):
        check_split("d", 6, split, users, items)
    assert check_split("d", 6, split, users, items, cold="user")["test"] == {"users": 0, "items": 0}
    with pytest.raises(PeplerError, match="an item never seen in training"):  # the item is still checked
        check_split("d", 6, ([0, 1], [2, 3], [4, 5]), users, items, cold="user")
    with pytest.raises(PeplerError, match="1 validation record has a user never seen"):  # so is validation
        check_split("d", 6, ([0, 1], [2, 3, 4], [5]), users, items, cold="user")
    with pytest.raises(PeplerError, match="a user never seen in training"):
        check_split("d", 6, split, users, items, cold="item")


# ------------------------------------------------------------------------------------------ prepare, CLI


@pytest.fixture(scope="module")
def plain_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "data"
    assert invoke("prepare", "tripadvisor", "--source", NETE_TINY, "--out", out).exit_code == 0
    return out


@pytest.fixture(scope="module")
def cold_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cold") / "data"
    result = invoke("prepare", "tripadvisor", "--source", NETE_TINY, "--out", out, "--cold-start", "2")
    assert result.exit_code == 0, result.output
    return out


def test_prepare_adds_two_cold_splits_to_the_manifest(cold_data):
    manifest = yaml.safe_load((cold_data / "manifest.yaml").read_text())
    splits = manifest["splits"]
    assert splits["count"] == 7 and splits["checked"] is True and "unseen" not in splits
    assert splits["cold_start"] == {
        6: {"kind": "user", "max_train_records": 2, "seed": 1234, "cold_users": 1, "never_seen": 1},
        7: {"kind": "item", "max_train_records": 2, "seed": 1234, "cold_items": 1, "never_seen": 1},
    }
    assert {f"splits/{k}/test.index" for k in (6, 7)} <= set(manifest["files"])  # in the fingerprint
    assert manifest["config"]["cold_start"] == 2
    dataset = load_prepared(cold_data)  # every file's hash and the fingerprint checked
    assert dataset.cold_splits == {6: ColdSplit("user", 2), 7: ColdSplit("item", 2)}
    for k in (6, 7):
        dataset.check_split(k, allow_unseen=False)


def test_prepare_without_cold_start_is_unchanged(cold_data, plain_data):
    manifest = yaml.safe_load((plain_data / "manifest.yaml").read_text())
    assert manifest["splits"]["count"] == 5 and "cold_start" not in manifest["splits"]
    assert manifest["config"]["cold_start"] is None
    assert not (plain_data / "splits" / "6").exists()
    # The regular splits are those of the dataset prepared with --cold-start.
    cold, plain = load_prepared(cold_data), load_prepared(plain_data)
    assert all(cold.splits[k] == plain.splits[k] for k in range(1, 6))
    assert cold.fingerprint != plain.fingerprint  # the cold splits' files are in the fingerprint


def test_prepare_seed_is_for_nete_data_only_with_cold_start(tmp_path):
    refused = invoke("prepare", "tripadvisor", "--source", NETE_TINY, "--out", tmp_path / "a", "--seed", "5")
    assert refused.exit_code == 2 and "--seed: only for raw review files" in refused.output
    seeded = invoke(
        "prepare",
        "tripadvisor",
        "--source",
        NETE_TINY,
        "--out",
        tmp_path / "b",
        "--seed",
        "5",
        "--cold-start",
        "0",
    )
    assert seeded.exit_code == 0, seeded.output
    cold = yaml.safe_load((tmp_path / "b" / "manifest.yaml").read_text())["splits"]["cold_start"]
    assert cold[6]["seed"] == 5 and cold[6]["max_train_records"] == 0
    bad = invoke(
        "prepare", "tripadvisor", "--source", NETE_TINY, "--out", tmp_path / "c", "--cold-start", "-1"
    )
    assert bad.exit_code == 2 and "cold_start" in bad.output


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({6: {"kind": "users", "max_train_records": 2}}, "'splits.cold_start.6.kind'"),
        ({6: {"kind": "user", "max_train_records": -1}}, "'splits.cold_start.6.max_train_records'"),
        ({9: {"kind": "user", "max_train_records": 2}}, "'splits.cold_start': 9 is not one of"),
        ([6, 7], "'splits.cold_start': expected a mapping"),
    ],
)
def test_a_malformed_cold_start_record_is_named_on_load(cold_data, tmp_path, entry, field):
    copy = Path(shutil.copytree(cold_data, tmp_path / "data"))
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    manifest["splits"]["cold_start"] = entry
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(PeplerError) as error:
        load_prepared(copy)
    assert error.value.message.startswith(f"{copy / 'manifest.yaml'}: field {field}")


def test_train_refuses_a_cold_split_the_manifest_does_not_call_cold(cold_data, tmp_path):
    copy = Path(shutil.copytree(cold_data, tmp_path / "data"))
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    del manifest["splits"]["cold_start"]
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = invoke("train", "--data", copy, "--split", "6", "--out", tmp_path / "run", *TRAIN)
    assert result.exit_code == 1
    assert "split 6: 7 test records have a user never seen in training" in one_line_error(result)


# -------------------------------------------------------------------------------------- train, generate


@pytest.fixture(scope="module")
def cold_run(cold_data, tmp_path_factory) -> Path:
    """A continuous-prompt run on the cold-user split 6 (its cold user has no training record)."""
    run = tmp_path_factory.mktemp("runs") / "run6"
    result = invoke(
        "train", "--data", cold_data, "--split", "6", "--out", run, "--strategy", "prompt-only", *TRAIN
    )
    assert result.exit_code == 0, result.output
    return run


def cold_user(data: Path) -> str:
    dataset = load_prepared(data)
    return dataset.records[dataset.splits[6][2][0]].user


def test_train_on_a_cold_split_needs_no_allow_unseen(cold_data, cold_run):
    manifest = yaml.safe_load((cold_run / "manifest.yaml").read_text())
    assert manifest["dataset"]["split"] == 6 and manifest["dataset"]["allow_unseen"] is False
    assert "unseen" not in manifest["dataset"]
    # The cold user has a row (every id of the dataset has one), untouched by training.
    assert cold_user(cold_data) in (cold_run / "users.txt").read_text().split()


def test_generate_by_default_refuses_the_never_seen_as_before(cold_data, cold_run, tmp_path):
    preds = tmp_path / "preds.jsonl"
    result = invoke("generate", cold_run, "--out", preds, "--device", "cpu")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "7 of 7 test pairs" in line and f"(first: user {cold_user(cold_data)})" in line
    assert line.endswith("pass --unknown skip to leave them out")
    assert not preds.exists() and not preds.with_name("preds.meta.yaml").exists()


def test_default_generate_marks_nothing(plain_data, cold_run, tmp_path):
    """On data without cold splits (another fingerprint: the ids with a vector are known) nothing is cold."""
    preds = tmp_path / "preds.jsonl"
    plain = plain_data
    result = invoke(
        "generate", cold_run, "--data", plain, "--split-number", "1", "--out", preds, "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert rows and all("cold" not in row for row in rows)
    meta = yaml.safe_load(preds.with_name("preds.meta.yaml").read_text())
    assert meta["config"]["cold_start"] == "error" and meta["config"]["history"] is None
    assert meta["predictions"]["cold"] == 0
    assert meta["cold_start"] == {"method": "error", "users": 0, "items": 0}
    assert "cold pairs" not in result.output


@pytest.mark.parametrize(("method", "history"), [("mean", False), ("neighbours", True), ("features", False)])
def test_generate_cold_start_marks_the_cold_pairs(cold_data, cold_run, tmp_path, method, history):
    preds = tmp_path / "preds.jsonl"
    options = ["--cold-start", method]
    if history:  # what the history says of the never-seen user is all that is known of it
        path = tmp_path / "history.jsonl"
        path.write_text(json.dumps({"user": cold_user(cold_data), "text": "the feature1 was great"}) + "\n")
        options += ["--history", path]
    result = invoke("generate", cold_run, "--out", preds, "--device", "cpu", *options)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 7 and all(row["cold"] == "user" for row in rows)
    assert {row["user"] for row in rows} == {cold_user(cold_data)}
    assert all(p.cold == "user" for p in read_predictions(preds))
    meta = yaml.safe_load(preds.with_name("preds.meta.yaml").read_text())
    assert meta["config"]["cold_start"] == method and meta["predictions"]["cold"] == 7
    assert meta["cold_start"]["method"] == method and meta["cold_start"]["users"] == 1
    assert "7 cold pairs (1 cold user, 0 cold items; --cold-start" in result.output
    if history:
        assert meta["cold_start"]["mean_fallback"] == {"users": 0, "items": 0}
        assert meta["cold_start"]["history"]["lines"] == 1 and meta["config"]["history"] == str(path)
        assert "got the mean vector" not in result.output
    elif method == "features":  # nothing is known of the never-seen user: the mean, said once with the count
        assert meta["cold_start"]["mean_fallback"] == {"users": 1, "items": 0}
        assert result.output.count("got the mean vector") == 1
        assert "1 cold user and 0 cold items got the mean vector" in result.output
    else:
        assert "mean_fallback" not in meta["cold_start"]


def test_generate_skip_marks_the_cold_ones_it_keeps(cold_data, tmp_path):
    """--cold-start error with --unknown skip on a K = 2 split: the never-seen are left out, the cold ones with
    1..2 training records are explained with their own vectors and marked."""
    users, items = synthetic(n_users=20, n_items=6, n=80, seed=3)
    records = load_prepared(cold_data).records
    rows = [records[k % len(records)]._replace(user=u, item=i) for k, (u, i) in enumerate(zip(users, items))]
    split, _, _ = cold_split(users, items, 2, "1234/1")
    data = tmp_path / "data"
    write_prepared(
        data,
        rows,
        {1: split},
        name="synthetic",
        source={"kind": "raw", "path": "x"},
        splits_info={"count": 1, "cold_start": {1: {"kind": "user", "max_train_records": 2}}},
    )
    run = tmp_path / "run"
    trained = invoke("train", "--data", data, "--out", run, "--strategy", "prompt-only", *TRAIN)
    assert trained.exit_code == 0, trained.output
    dataset = load_prepared(data)
    in_train = Counter(dataset.records[r].user for r in dataset.splits[1][0])
    test = [dataset.records[r] for r in dataset.splits[1][2]]
    seen = [r for r in test if in_train[r.user] > 0]
    assert seen and len(seen) < len(test)
    preds = tmp_path / "preds.jsonl"
    result = invoke("generate", run, "--out", preds, "--device", "cpu", "--unknown", "skip")
    assert result.exit_code == 0, result.output
    predictions = read_predictions(preds)
    assert len(predictions) == len(seen) and all(p.cold == "user" for p in predictions)
    assert f"skipped {len(test) - len(seen)} pairs" in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--cold-start", "mean", "--unknown", "skip"],
            "--unknown skip leaves out what --cold-start error would",
        ),
        (
            ["--cold-start", "mean", "--history", "h.jsonl"],
            "--history is what --cold-start neighbours or features",
        ),
        (["--history", "h.jsonl"], "--cold-start error does not read it"),
        (["--cold-start", "nearest"], "cold_start"),
    ],
)
def test_generate_refuses_options_that_do_not_go_together(cold_run, tmp_path, options, message):
    result = invoke("generate", cold_run, "--out", tmp_path / "p.jsonl", *options)
    assert result.exit_code == 2
    assert message in one_line_error(result)


# ------------------------------------------------------------------------------------------ --history


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got a list"),
        ('{"features": ["room"]}', "field 'user' or 'item': give exactly one of them"),
        ('{"user": "a", "item": "b", "features": ["room"]}', "field 'user' or 'item': give exactly one"),
        ('{"user": 7, "features": ["room"]}', "field 'user': expected a non-empty string, got a number"),
        ('{"user": "a", "features": "room"}', "field 'features': expected a list of non-empty strings"),
        ('{"user": "a", "features": ["room", ""]}', "field 'features': expected a list of non-empty strings"),
        ('{"user": "a", "text": 3}', "field 'text': expected a string, got a number"),
        ('{"user": "a"}', "field 'features' or 'text': give at least one of them"),
        ('{"user": "a", "feature": ["room"]}', "field 'feature': unknown"),
    ],
)
def test_a_bad_history_line_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "history.jsonl"
    path.write_text('{"item": "i1", "features": ["room"]}\n\n' + line + "\n")
    with pytest.raises(PeplerError) as error:
        read_history(path)
    assert error.value.message.startswith(f"{path}: line 3: {field}")


def test_a_bad_history_writes_nothing(cold_run, tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text('{"user": "a", "features": [1]}\n')
    preds = tmp_path / "preds.jsonl"
    result = invoke(
        "generate",
        cold_run,
        "--out",
        preds,
        "--cold-start",
        "neighbours",
        "--history",
        history,
        "--device",
        "cpu",
    )
    assert result.exit_code == 1
    assert f"{history}: line 1: field 'features'" in one_line_error(result)
    assert list(tmp_path.iterdir()) == [history]


def test_history_features_count_each_feature_of_a_line_once(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = [
        {"user": "a", "features": ["front desk"], "text": "The front desk was friendly, the room clean."},
        {"user": "a", "text": "room room room"},
        {"item": "b", "features": ["pool"]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    known = history_features(read_history(path), ["room", "front desk", "desk"])
    # Line 1: "front desk" given and found (once), "room" found; "desk" is inside "front desk". Line 2: room.
    assert known["user"] == {"a": Counter({"room": 2, "front desk": 1})}
    assert known["item"] == {"b": Counter({"pool": 1})}


# --------------------------------------------------------------------------------------- the vectors


def test_neighbours_are_the_closest_in_features_ties_to_the_lower_row():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [3.0, -1.0]])
    warm = [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    warm_features = {
        "a": Counter(room=2),
        "b": Counter(room=1, staff=1),
        "c": Counter(pool=3),
        "d": Counter(staff=2),
    }
    cold = {
        # cos with a = 1, b = 1/sqrt(2), c = d = 0: the two closest are a and b.
        "x": Counter(room=1),
        # cos with b = 1, a = d = 1/sqrt(2) (a tie: the lower row, a, is taken), c = 0.
        "y": Counter(room=1, staff=1),
        "z": Counter(),  # nothing known: the mean
        "w": Counter(bar=4),  # no warm one shares a feature: the mean
    }
    found = neighbour_vectors(table, warm, warm_features, cold, neighbours=2)
    assert torch.equal(found.vectors["x"], (table[0] + table[1]) / 2)
    assert torch.equal(found.vectors["y"], (table[1] + table[0]) / 2)
    mean = table.mean(dim=0)
    assert torch.equal(found.vectors["z"], mean) and torch.equal(found.vectors["w"], mean)
    assert found.fell_back == 2
    # With the default ten, every warm one sharing a feature counts, and no other.
    wide = neighbour_vectors(table, warm, warm_features, {"y": Counter(room=1, staff=1)})
    assert torch.allclose(wide.vectors["y"], table[[0, 1, 3]].mean(dim=0))


def test_find_cold_marks_unknown_ids_and_few_records_of_the_splits_kind():
    records = [
        Record("u1", "i1", 5.0, "", "room"),
        Record("u1", "i2", 5.0, "", "room"),
        Record("u2", "i2", 5.0, "", "staff"),
        Record("u3", "i1", 5.0, "", "room"),
    ]
    trained = Trained.of(records, [0, 1, 2])  # u1: 2 records, u2: 1, u3: none
    users, items = ["u1", "u2", "u3", "u9"], ["i1", "i2", "i1", "i7"]
    plain = find_cold(users, items, {"u1", "u2", "u3"}, {"i1", "i2"})
    assert plain == ColdIds(frozenset({"u9"}), frozenset({"i7"}))
    assert [plain.mark(u, i) for u, i in zip(users, items)] == [None, None, None, "user+item"]
    few = find_cold(users, items, {"u1", "u2"}, {"i1", "i2", "i7"}, ColdSplit("user", 1), trained)
    assert few.users == {"u2", "u3", "u9"} and few.items == frozenset()  # u1 has 2 > K = 1
    assert [few.mark(u, i) for u, i in zip(users, items)] == [None, "user", "user", "user"]


@pytest.fixture(scope="module")
def loaded(cold_data):
    dataset = load_prepared(cold_data)
    return dataset, Trained.of(dataset.records, dataset.splits[6][0])


def fresh(run: Path):
    """The run loaded anew: apply_cold_start changes the model's tables."""
    return load_run(run, torch.device("cpu"))


def test_mean_is_the_mean_of_the_warm_trained_rows(loaded, cold_run):
    dataset, trained = loaded
    run = fresh(cold_run)
    user = dataset.records[dataset.splits[6][2][0]].user
    cold = ColdIds(frozenset({user, "stranger"}))
    table = run.model.user_embeddings.weight.detach().clone()
    items = run.model.item_embeddings.weight.detach().clone()
    warm_rows = [row for row, u in enumerate(run.entities.users) if trained.counts["user"][u] and u != user]
    assert len(warm_rows) == len(run.entities.users) - 1  # every user but the cold one was trained
    applied = apply_cold_start("mean", run.model, run.entities, run.tokenizer, cold, trained, {})
    expected = table[warm_rows].mean(dim=0)
    weight = run.model.user_embeddings.weight
    assert torch.equal(weight[applied.entities.user_row(user, "t")], expected)
    # An id the run has no row for gets one, added at the end; the other rows stay as trained.
    assert (
        applied.entities.users == (*run.entities.users, "stranger") and weight.shape[0] == table.shape[0] + 1
    )
    assert torch.equal(weight[-1], expected)
    assert torch.equal(weight[warm_rows], table[warm_rows])
    assert torch.equal(run.model.item_embeddings.weight, items)  # no cold item: the items stay as trained


def test_features_give_a_continuous_prompt_the_mean_word_embedding(loaded, cold_run):
    dataset, trained = loaded
    run = fresh(cold_run)
    user = dataset.records[dataset.splits[6][2][0]].user
    history = {"user": {user: Counter({"feature1": 1, "feature3": 2})}, "item": {}}
    cold = ColdIds(frozenset({user, "stranger"}))
    words = run.model.lm.get_input_embeddings().weight.detach().clone()
    table = run.model.user_embeddings.weight.detach().clone()
    applied = apply_cold_start("features", run.model, run.entities, run.tokenizer, cold, trained, history)
    # Joined as a discrete prompt: most frequent in training first.
    ordered = sorted(["feature1", "feature3"], key=lambda f: (-trained.feature_index.counts[f], f))
    ids = run.tokenizer(" ".join(ordered), add_special_tokens=False)["input_ids"]
    weight = run.model.user_embeddings.weight
    assert torch.equal(weight[applied.entities.user_row(user, "t")], words[ids].mean(dim=0))
    # Nothing known of the stranger: the mean of the warm rows, counted.
    warm_rows = [row for row, u in enumerate(run.entities.users) if trained.counts["user"][u] and u != user]
    assert torch.equal(weight[-1], table[warm_rows].mean(dim=0))
    assert applied.fell_back == {"user": 1, "item": 0}


def test_neighbours_on_a_run_use_the_cold_ones_training_records_too(loaded, cold_run):
    dataset, trained = loaded
    run = fresh(cold_run)
    user = dataset.records[dataset.splits[6][0][0]].user  # a trained user, called cold here
    cold = ColdIds(frozenset({user}))
    table = run.model.user_embeddings.weight.detach().clone()
    known = trained.features["user"][user]
    scores = {}
    for row, other in enumerate(run.entities.users):
        theirs = trained.features["user"].get(other)
        if other == user or not theirs:
            continue
        dot = sum(known[f] * theirs[f] for f in known)
        norm = sum(c * c for c in known.values()) ** 0.5 * sum(c * c for c in theirs.values()) ** 0.5
        scores[row] = dot / norm
    closest = sorted((row for row in scores if scores[row] > 0), key=lambda row: (-scores[row], row))[:10]
    apply_cold_start("neighbours", run.model, run.entities, run.tokenizer, cold, trained, {})
    row = run.entities.user_row(user, "t")
    assert torch.allclose(run.model.user_embeddings.weight[row], table[closest].mean(dim=0))


def test_a_discrete_prompt_takes_history_features_and_refuses_vectors(tiny_lm):
    model = build_model("discrete", tiny_lm, EntityIndex(("u",), ("i",)), None)
    with pytest.raises(PeplerError) as error:
        check_method("mean", model, "runs/d")
    assert error.value.exit_code == 2
    assert "runs/d: --cold-start mean gives cold users and items a vector" in error.value.message
    check_method("features", model, "runs/d")
    features = FeatureIndex({"u": frozenset({"room"})}, {"i": frozenset({"staff"})}, Counter(room=3, staff=1))
    history = {"user": {"u": Counter(pool=1), "w": Counter(bar=1)}, "item": {"new": Counter(view=2)}}
    cold = ColdIds(frozenset({"u"}), frozenset({"new"}))
    added = with_history(features, cold, history)
    assert added.user_features == {"u": frozenset({"room", "pool"})}  # w is not cold: its history is not used
    assert added.item_features == {"i": frozenset({"staff"}), "new": frozenset({"view"})}
    assert added.prompt_text("u", "new") == "room pool view"
    applied = apply_cold_start("features", model, EntityIndex(("u",), ("i",)), None, cold, None, history)
    assert applied.entities.items == (
        "i",
        "new",
    )  # a row for the prompt inputs; a discrete prompt never reads it


def test_generate_features_on_a_discrete_run(cold_data, tmp_path):
    run = tmp_path / "run7"
    trained = invoke(
        "train", "--data", cold_data, "--split", "7", "--out", run, "--prompt", "discrete", *TRAIN
    )
    assert trained.exit_code == 0, trained.output
    refused = invoke(
        "generate", run, "--out", tmp_path / "m.jsonl", "--cold-start", "mean", "--device", "cpu"
    )
    assert refused.exit_code == 2 and "use --cold-start features" in one_line_error(refused)
    dataset = load_prepared(cold_data)
    item = dataset.records[dataset.splits[7][2][0]].item
    history = tmp_path / "h.jsonl"
    history.write_text(json.dumps({"item": item, "features": ["feature2"]}) + "\n")
    preds = tmp_path / "p.jsonl"
    result = invoke(
        "generate", run, "--out", preds, "--cold-start", "features", "--history", history, "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    assert {p.cold for p in read_predictions(preds)} == {"item"}


# --------------------------------------------------------------------------------------- the cold mark


def test_the_cold_mark_is_written_only_when_set_and_read_back(tmp_path):
    path = tmp_path / "preds.jsonl"
    warm = Prediction("u", "i", "ref", "gen", "room")
    cold = Prediction("u", "j", "ref", "gen", "room", cold="user+item")
    write_predictions(path, [warm, cold])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert "cold" not in rows[0] and rows[1]["cold"] == "user+item"
    assert read_predictions(path) == [warm, cold]


@pytest.mark.parametrize(("value", "got"), [('"warm"', "'warm'"), ("true", "a boolean"), ("1", "a number")])
def test_a_bad_cold_mark_names_line_and_field(tmp_path, value, got):
    path = tmp_path / "preds.jsonl"
    row = {"user": "u", "item": "i", "reference": "r", "generated": "g", "feature": "f"}
    path.write_text(json.dumps(row)[:-1] + f', "cold": {value}}}\n')
    with pytest.raises(PeplerError) as error:
        read_predictions(path)
    assert error.value.message == f"{path}: line 1: field 'cold' must be one of user, item, user+item, got {got}"
