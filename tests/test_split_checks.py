"""Splits are checked, not trusted: overlapping parts, empty parts and ids training never saw.

NETE sources (`prepare tripadvisor --source DIR`), raw reviews (`prepare FILE`, whose splits must always pass)
and datasets of an older pepler (checked when `train` uses them).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.data.splits import check_split, make_splits
from pepler_cli.errors import PeplerError

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
NETE_TINY = FIXTURES / "nete-tiny"
SAMPLE = FIXTURES / "amazon-musical-instruments-sample.jsonl"

USERS = ["u0", "u1", "u2", "u0", "u1", "u2", "u3", "u4", "u0", "u1"]
ITEMS = ["i0", "i1", "i0", "i1", "i0", "i1", "i0", "i2", "i1", "i0"]
TRAIN = ["--backbone", "gpt2-tiny", "--strategy", "prompt-only", "--epochs", "1", "--batch-size", "32",
         "--device", "cpu"]  # fmt: skip


def one_line_error(result) -> str:
    """The one error line of a failed command (progress bars may precede it on stderr)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


# ----------------------------------------------------------------------------------------- the function


def test_overlapping_parts_are_refused_naming_the_records():
    split = ([0, 1, 2, 3, 4, 5, 12, 40], [6, 8], [9, 12, 40])
    users, items = [f"u{r % 3}" for r in range(41)], [f"i{r % 2}" for r in range(41)]
    with pytest.raises(PeplerError) as error:
        check_split("data/x", 3, split, users, items)
    assert error.value.message == "data/x: split 3: records 12, 40 are in both train and test"


def test_a_long_overlap_names_the_first_five_and_counts_the_rest():
    split = (list(range(20)), list(range(10, 20)), [20])
    users, items = ["u"] * 21, ["i"] * 21
    with pytest.raises(
        PeplerError, match=r"split 1: records 10, 11, 12, 13, 14 and 5 more are in both train "
    ):
        check_split("d", 1, split, users, items)
    with pytest.raises(PeplerError, match="split 2: record 3 is in both validation and test"):
        check_split("d", 2, ([0, 1], [2, 3], [3]), users, items)


@pytest.mark.parametrize("empty", [0, 1, 2])
def test_an_empty_part_is_refused(empty):
    split = [[0, 1, 2], [3], [4]]
    split[empty] = []
    with pytest.raises(PeplerError) as error:
        check_split("d", 2, split, USERS, ITEMS)
    part = ("train", "validation", "test")[empty]
    assert error.value.message == f"d: split 2: the {part} part is empty"


def test_unseen_ids_are_counted_named_and_refused_unless_allowed():
    # Training holds u0, u1, u2 and i0, i1; u3 (record 6) and u4, i2 (record 7) are only in validation/test.
    split = ([0, 1, 2, 3, 4, 5], [6, 8], [7, 9])
    with pytest.raises(PeplerError) as error:
        check_split("data/x", 2, split, USERS, ITEMS)
    assert error.value.message == (
        "data/x: split 2: 1 validation record has a user never seen in training (first: u3); "
        "1 test record has a user never seen in training (first: u4); "
        "1 test record has an item never seen in training (first: i2); pass --allow-unseen to keep them"
    )
    counts = check_split("data/x", 2, split, USERS, ITEMS, allow_unseen=True)
    assert counts == {"validation": {"users": 1, "items": 0}, "test": {"users": 1, "items": 1}}


def test_unseen_message_counts_records_and_shows_three_distinct_ids():
    users = ["a", "b", "x", "y", "x", "z", "w"]
    items = ["i"] * 7
    with pytest.raises(PeplerError) as error:
        check_split("p", 1, ([0], [1], [2, 3, 4, 5, 6]), users, items)
    assert error.value.message == (
        "p: split 1: 1 validation record has a user never seen in training (first: b); 5 test records have a "
        "user never seen in training (first: x, y, z); pass --allow-unseen to keep them"
    )


def test_a_covered_split_passes_with_zero_counts():
    counts = check_split("d", 1, ([0, 1, 2, 3, 4, 5, 6, 7], [8], [9]), USERS, ITEMS)
    assert counts == {"validation": {"users": 0, "items": 0}, "test": {"users": 0, "items": 0}}


def test_the_splits_made_for_raw_reviews_always_pass():
    rng = random.Random(5)
    users = [f"u{int(300 * rng.random() ** 2)}" for _ in range(3000)]
    items = [f"i{int(200 * rng.random() ** 3)}" for _ in range(3000)]
    for k, split in make_splits(users, items, seed=7).items():
        check_split("raw", k, split, users, items)


# ----------------------------------------------------------------------------------- prepare (NETE, raw)


def nete_copy(tmp_path: Path) -> Path:
    source = tmp_path / "nete"
    shutil.copytree(NETE_TINY, source)
    return source


def read_index(path: Path) -> list[int]:
    return [int(token) for token in path.read_text().split()]


def write_index(path: Path, numbers: list[int]) -> None:
    path.write_text(" ".join(map(str, numbers)))


def prepare_nete(source: Path, out: Path, *extra: str):
    return runner.invoke(app, ["prepare", "tripadvisor", "--source", str(source), "--out", str(out), *extra])


def test_prepare_refuses_nete_splits_that_overlap(tmp_path):
    source = nete_copy(tmp_path)
    train = read_index(source / "3" / "train.index")
    test = read_index(source / "3" / "test.index")
    write_index(source / "3" / "test.index", [*test, train[0], train[5]])
    result = prepare_nete(source, tmp_path / "data")
    assert result.exit_code == 1
    shown = ", ".join(map(str, sorted([train[0], train[5]])))
    assert f"{source.resolve()}: split 3: records {shown} are in both train and test" in one_line_error(
        result
    )
    assert not (tmp_path / "data").exists()
    # --allow-unseen is no way around a leak.
    assert prepare_nete(source, tmp_path / "data", "--allow-unseen").exit_code == 1


def test_prepare_refuses_an_empty_nete_part(tmp_path):
    source = nete_copy(tmp_path)
    (source / "4" / "validation.index").write_text("\n")
    result = prepare_nete(source, tmp_path / "data")
    assert result.exit_code == 1
    assert "split 4: the validation part is empty" in one_line_error(result)


def move_user_out_of_training(source: Path, k: int) -> tuple[str, int]:
    """Move every training record of one user of split ``k`` into its test part; returns the user and how
    many validation/test records that user then has."""
    columns = _nete_columns(source)
    train = read_index(source / str(k) / "train.index")
    validation = read_index(source / str(k) / "validation.index")
    test = read_index(source / str(k) / "test.index")
    user = columns.users[test[0]]
    moved = [r for r in train if columns.users[r] == user]
    write_index(source / str(k) / "train.index", [r for r in train if columns.users[r] != user])
    write_index(source / str(k) / "test.index", test + moved)
    unseen = sum(columns.users[r] == user for r in validation + test + moved)
    return user, unseen


def _nete_columns(source: Path):
    from pepler_cli.data.nete import read_nete_reviews

    return read_nete_reviews(source / "reviews.pickle")


def test_prepare_refuses_unseen_users_unless_allowed_and_records_it(tmp_path):
    source = nete_copy(tmp_path)
    user, unseen = move_user_out_of_training(source, 2)
    result = prepare_nete(source, tmp_path / "data")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "split 2: " in line and f"a user never seen in training (first: {user})" in line
    assert line.endswith("pass --allow-unseen to keep them")
    assert not (tmp_path / "data").exists()

    allowed = prepare_nete(source, tmp_path / "data", "--allow-unseen")
    assert allowed.exit_code == 0, allowed.output
    assert "kept (--allow-unseen): split 2" in allowed.output
    splits = yaml.safe_load((tmp_path / "data" / "manifest.yaml").read_text())["splits"]
    assert splits["checked"] is True and splits["allow_unseen"] is True
    assert list(splits["unseen"]) == [2]
    assert sum(part["users"] for part in splits["unseen"][2].values()) == unseen
    assert load_prepared(tmp_path / "data").unseen_allowed


def test_a_checked_nete_dataset_says_so(nete_tiny_data):
    splits = yaml.safe_load((nete_tiny_data / "manifest.yaml").read_text())["splits"]
    assert splits["checked"] is True and splits["allow_unseen"] is False and "unseen" not in splits


def test_raw_reviews_are_checked_and_need_no_allow_unseen(tmp_path):
    out = tmp_path / "raw"
    result = runner.invoke(app, ["prepare", str(SAMPLE), "--name", "sample", "--out", str(out)])
    assert result.exit_code == 0, result.output
    splits = yaml.safe_load((out / "manifest.yaml").read_text())["splits"]
    assert splits["checked"] is True and splits["allow_unseen"] is False and "unseen" not in splits
    # 40 reviews by 40 users: training needs every one of them, so split 1 has nothing left to validate on.
    # prepare says so with the data; train refuses the split.
    assert load_prepared(out).splits[1][1] == []
    trained = runner.invoke(app, ["train", "--data", str(out), "--out", str(tmp_path / "run"), *TRAIN])
    assert trained.exit_code == 1
    assert one_line_error(trained) == f"error: {out}: split 1: the validation part is empty"

    refused = runner.invoke(
        app, ["prepare", str(SAMPLE), "--name", "sample", "--out", str(tmp_path / "r2"), "--allow-unseen"]
    )
    assert refused.exit_code == 2
    assert "--allow-unseen is for the paper's datasets" in one_line_error(refused)


# ------------------------------------------------------------------------- a dataset of an older pepler


def older_dataset(nete_tiny_data: Path, out: Path, overlap: bool = False) -> tuple[Path, str]:
    """nete-tiny's records with split 1 only, one user's training records moved to test, written without
    the manifest's ``splits.checked`` (as pepler did before it checked splits); returns it and the user."""
    dataset = load_prepared(nete_tiny_data)
    train, validation, test = dataset.splits[1]
    user = dataset.records[test[0]].user
    moved = [r for r in train if dataset.records[r].user == user]
    train = [r for r in train if dataset.records[r].user != user]
    test = sorted(test + moved)
    if overlap:
        train = train + [test[-1]]
    write_prepared(
        out,
        dataset.records,
        {1: (train, validation, test)},
        name="older",
        source={"kind": "nete", "path": str(nete_tiny_data)},
        splits_info={"count": 1, "method": "given", "seed": None, "ratios": [0.8, 0.1, 0.1]},
    )
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert "checked" not in manifest["splits"]
    return out, user


def test_train_checks_an_older_dataset_and_allow_unseen_opts_in(nete_tiny_data, tmp_path):
    data, user = older_dataset(nete_tiny_data, tmp_path / "older")
    run = tmp_path / "run"
    refused = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), *TRAIN])
    assert refused.exit_code == 1
    line = one_line_error(refused)
    assert f"{data}: split 1: " in line and f"a user never seen in training (first: {user})" in line
    assert line.endswith("pass --allow-unseen to keep them")
    assert not run.exists()

    trained = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--allow-unseen", *TRAIN])
    assert trained.exit_code == 0, trained.output
    recorded = yaml.safe_load((run / "manifest.yaml").read_text())
    assert recorded["dataset"]["split_checked"] is True and recorded["dataset"]["allow_unseen"] is True
    assert recorded["dataset"]["unseen"]["test"]["users"] > 0
    assert recorded["config"]["allow_unseen"] is True


def test_train_refuses_an_older_dataset_whose_parts_overlap(nete_tiny_data, tmp_path):
    data, _ = older_dataset(nete_tiny_data, tmp_path / "older", overlap=True)
    result = runner.invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--allow-unseen", *TRAIN]
    )
    assert result.exit_code == 1
    assert "split 1: record " in one_line_error(result) and "is in both train and test" in result.output


def test_a_checked_dataset_trains_and_the_run_records_the_check(nete_tiny_data, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(nete_tiny_data), "--out", str(run), *TRAIN])
    assert result.exit_code == 0, result.output
    dataset = yaml.safe_load((run / "manifest.yaml").read_text())["dataset"]
    assert dataset["split_checked"] is True and dataset["allow_unseen"] is False and "unseen" not in dataset
