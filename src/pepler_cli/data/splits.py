"""Random train/validation/test splits whose training part holds every user and every item.

PEPLER learns one prompt vector per user and per item, so a user or item that appears only in validation or
test would have an untrained vector. NETE's datasets come with five splits made that way; for raw reviews
:func:`make_splits` makes five more with the same guarantee:

1. Shuffle the record numbers with a generator seeded by ``f"{seed}/{k}"`` (split k = 1..5), so every split
   is different, and the same seed always gives the same five splits (string seeds hash through SHA-512 in
   Python's ``random``, so this holds across platforms and Python versions).
2. Walk the shuffled order once; a record whose user or item has not been seen yet goes to training. This
   covers every user and item with at most one record each (a random greedy cover).
3. Fill training from the rest of the shuffled order up to round(0.8 n) records, then validation up to
   round(0.1 n), and test takes what is left. When the cover alone exceeds the training quota (very sparse
   data), the rest is halved between validation and test.

Each part is written sorted by record number. The three parts are disjoint and together hold every record.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

SPLIT_COUNT = 5
SPLIT_RATIOS = (0.8, 0.1, 0.1)
SPLIT_PARTS = ("train", "validation", "test")
SPLIT_METHOD = (
    "random per split k (random.Random(f'{seed}/{k}') shuffle); a greedy pass puts into train the "
    "first record of every user and item not yet covered, then train is filled to 80%, validation to "
    "10%, test gets the rest"
)

Split = tuple[list[int], list[int], list[int]]


def make_splits(
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    seed: int = 1234,
    count: int = SPLIT_COUNT,
    ratios: tuple[float, float, float] = SPLIT_RATIOS,
) -> dict[int, Split]:
    """``count`` splits of records 0..n-1, keyed 1..count; record r is by ``users[r]`` on ``items[r]``."""
    if len(users) != len(items):
        raise ValueError("users and items must have one entry per record")
    return {k: _one_split(users, items, f"{seed}/{k}", ratios) for k in range(1, count + 1)}


def _one_split(
    users: Sequence[Hashable], items: Sequence[Hashable], seed: str, ratios: tuple[float, ...]
) -> Split:
    n = len(users)
    order = list(range(n))
    random.Random(seed).shuffle(order)

    seen_users: set[Hashable] = set()
    seen_items: set[Hashable] = set()
    train: list[int] = []
    rest: list[int] = []
    for r in order:
        user, item = users[r], items[r]
        if user in seen_users and item in seen_items:
            rest.append(r)
        else:
            seen_users.add(user)
            seen_items.add(item)
            train.append(r)

    total = ratios[0] + ratios[1] + ratios[2]
    train_quota = round(n * ratios[0] / total)
    validation_quota = round(n * ratios[1] / total)
    take = max(0, train_quota - len(train))
    train.extend(rest[:take])
    rest = rest[take:]
    if len(train) > train_quota:
        # The cover outgrew the training quota: share what is left between validation and test as the
        # ratios say.
        share = ratios[1] / (ratios[1] + ratios[2]) if ratios[1] + ratios[2] > 0 else 0.5
        validation_quota = round(len(rest) * share)
    validation = rest[:validation_quota]
    test = rest[validation_quota:]
    return sorted(train), sorted(validation), sorted(test)
