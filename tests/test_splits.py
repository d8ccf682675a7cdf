"""Invariants of the five random 8:1:1 splits made for raw reviews."""

from __future__ import annotations

import random

import pytest

from pepler_cli.data.splits import make_splits


def _records(n: int, users: int, items: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    # A skewed (Zipf-like) popularity, as in real review data: many users and items with one record.
    user_list = [f"u{int(users * rng.random() ** 2)}" for _ in range(n)]
    item_list = [f"i{int(items * rng.random() ** 3)}" for _ in range(n)]
    return user_list, item_list


@pytest.mark.parametrize("n, users, items", [(5000, 400, 300), (2000, 900, 700), (300, 10, 10)])
def test_invariants(n, users, items):
    user_list, item_list = _records(n, users, items)
    splits = make_splits(user_list, item_list, seed=1234)
    assert sorted(splits) == [1, 2, 3, 4, 5]
    for train, validation, test in splits.values():
        parts = [set(train), set(validation), set(test)]
        assert sum(len(p) for p in parts) == n == len(train) + len(validation) + len(test)  # no repeats
        assert (
            parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
        )
        assert parts[0] | parts[1] | parts[2] == set(range(n))
        assert {user_list[r] for r in train} == set(user_list)
        assert {item_list[r] for r in train} == set(item_list)
        assert train == sorted(train) and validation == sorted(validation) and test == sorted(test)


def test_ratios_are_eight_one_one_when_the_cover_fits():
    user_list, item_list = _records(10_000, 500, 400)
    for train, validation, test in make_splits(user_list, item_list).values():
        assert len(train) == 8000
        assert len(validation) == 1000
        assert len(test) == 1000


def test_sparse_data_keeps_every_user_and_splits_the_rest_evenly():
    # Most users have a single record, so the cover needs more than 80% of the records.
    user_list = [f"u{r}" for r in range(900)] + [f"u{r % 10}" for r in range(100)]
    item_list = [f"i{r % 50}" for r in range(1000)]
    for train, validation, test in make_splits(user_list, item_list, seed=3).values():
        assert len(train) >= 900
        assert abs(len(validation) - len(test)) <= 1
        assert {user_list[r] for r in train} == set(user_list)


def test_deterministic_for_a_seed_and_different_across_splits_and_seeds():
    user_list, item_list = _records(3000, 200, 150)
    first = make_splits(user_list, item_list, seed=1234)
    assert first == make_splits(user_list, item_list, seed=1234)
    tests = [tuple(first[k][2]) for k in range(1, 6)]
    assert len(set(tests)) == 5
    assert make_splits(user_list, item_list, seed=99)[1] != first[1]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_tiny_inputs(n):
    user_list = [f"u{r % 2}" for r in range(n)]
    item_list = [f"i{r % 3}" for r in range(n)]
    for train, validation, test in make_splits(user_list, item_list).values():
        assert sorted(train + validation + test) == list(range(n))
        assert {user_list[r] for r in train} == set(user_list)


def test_mismatched_lengths_are_a_bug():
    with pytest.raises(ValueError):
        make_splits(["u"], [])
