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
``prepare --cold-start K`` adds two splits of another kind after these (``data/cold_start.py``).

Splits are checked, not trusted: :func:`check_split` refuses parts that share a record or are empty, and
validation/test records whose user or item never occurs in training unless ``--allow-unseen`` (every split
``prepare`` writes, and the split ``train`` uses). :func:`unknown_pairs` finds the pairs a run has no trained
vector for, and :func:`keep_known_pairs` is ``--unknown error|skip`` for both ``generate`` and ``score``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Container, Hashable, Sequence
from typing import NamedTuple, TypeVar

from pepler_cli.data.prepared.layout import SPLIT_PARTS
from pepler_cli.errors import PeplerError

T = TypeVar("T")

SPLIT_COUNT = 5
SPLIT_RATIOS = (0.8, 0.1, 0.1)
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


# ------------------------------------------------------------------------------------------ checking splits

SHOWN_IDS = 3  # how many ids a message names
SHOWN_RECORDS = 5  # how many record numbers a message names
UNSEEN_PARTS = ("validation", "test")


def check_split(
    where: object,
    k: int,
    split: Sequence[Sequence[int]],
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    *,
    allow_unseen: bool = False,
    allow_empty: bool = False,
    cold: str | None = None,
) -> dict[str, dict[str, int]]:
    """Check split ``k`` (train, validation, test record numbers) of the records by ``users`` on ``items``.

    Refused, as a PeplerError naming ``where`` and the split: a record in two parts (test data would leak into
    training), an empty part (unless ``allow_empty``), and, unless ``allow_unseen``, validation or test
    records whose user or item never occurs in the training part (their prompt vectors would never be
    trained). Returns, per validation and test part, how many records have an unseen user and how many an
    unseen item (all 0 when none). One pass over each part with sets: O(records).

    ``cold`` ("user" or "item") says the split is a cold-start split (``data/cold_start.py``): its test part
    holds users (items) training may never have seen, which is what it tests, so those are neither refused nor
    counted; everything else is checked as for any split.

    ``allow_empty`` is for the splits :func:`make_splits` makes: it leaves validation or test empty only when
    the data is so sparse that training needs every record to hold every user and item (a few dozen
    reviews); ``train`` refuses such a split when it is used.
    """
    parts = dict(zip(SPLIT_PARTS, split))
    for part in SPLIT_PARTS:
        if not parts[part] and not (allow_empty and part != "train"):
            raise PeplerError(f"{where}: split {k}: the {part} part is empty")
    sets = {part: set(numbers) for part, numbers in parts.items()}
    for first, second in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = sets[first] & sets[second]
        if shared:
            raise PeplerError(f"{where}: split {k}: {_record_list(shared)} in both {first} and {second}")

    train_users = {users[r] for r in parts["train"]}
    train_items = {items[r] for r in parts["train"]}
    counts: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for part in UNSEEN_PARTS:
        counts[part] = {}
        for kind, ids, seen in (("user", users, train_users), ("item", items, train_items)):
            if part == "test" and kind == cold:
                counts[part][f"{kind}s"] = 0
                continue
            unseen = [ids[r] for r in parts[part] if ids[r] not in seen]
            counts[part][f"{kind}s"] = len(unseen)
            if unseen:
                first = ", ".join(map(str, list(dict.fromkeys(unseen))[:SHOWN_IDS]))
                subject = f"1 {part} record has" if len(unseen) == 1 else f"{len(unseen)} {part} records have"
                article = "an" if kind == "item" else "a"
                problems.append(f"{subject} {article} {kind} never seen in training (first: {first})")
    if problems and not allow_unseen:
        raise PeplerError(f"{where}: split {k}: {'; '.join(problems)}; pass --allow-unseen to keep them")
    return counts


def _record_list(numbers: set[int]) -> str:
    """``record 12 is`` / ``records 12, 40 are`` / ``records 1, 2, 3, 4, 5 and 7 more are``."""
    shown = heapq.nsmallest(SHOWN_RECORDS, numbers)
    if len(numbers) == 1:
        return f"record {shown[0]} is"
    more = f" and {len(numbers) - len(shown)} more" if len(numbers) > len(shown) else ""
    return f"records {', '.join(map(str, shown))}{more} are"


# ---------------------------------------------------------------------------- pairs of ids never trained

UNKNOWN_HINT = "pass --unknown skip to leave them out"


class KnownIds(NamedTuple):
    """The users and items a run has trained, and how a message says what the others are."""

    users: Container[Hashable]
    items: Container[Hashable]
    unknown_to: str  # ends "... have a user or item ___": "the run never saw in training (split 1, train)"


def keep_known_pairs(
    entries: Sequence[T],
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    known: KnownIds,
    *,
    unknown: str,
    where: object,
    what: str,
    purpose: str,
) -> list[T]:
    """The ``entries`` whose pair (``users[k]``, ``items[k]``) is known, as ``--unknown`` says: with ``error``
    any other is a one-line error naming ``where``; with ``skip`` the others are left out, and leaving out every
    entry is an error too. ``what`` names the entries ("predictions"), ``purpose`` what they are for ("score").
    """
    positions = unknown_pairs(users, items, known.users, known.items)
    if not positions:
        return list(entries)
    first = first_unknown_ids(positions, users, items, known.users, known.items)
    found = (
        f"{len(positions)} of {len(entries)} {what} have a user or item {known.unknown_to} (first: {first})"
    )
    if unknown == "error":
        raise PeplerError(f"{where}: {found}; {UNKNOWN_HINT}")
    dropped = set(positions)
    kept = [entry for position, entry in enumerate(entries) if position not in dropped]
    if not kept:
        raise PeplerError(f"{where}: {found}: nothing is left to {purpose}")
    return kept


def unknown_pairs(
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    known_users: Container[Hashable],
    known_items: Container[Hashable],
) -> list[int]:
    """Positions of the (user, item) pairs whose user is not in ``known_users`` or item not in ``known_items``."""
    return [
        position
        for position, (user, item) in enumerate(zip(users, items))
        if user not in known_users or item not in known_items
    ]


def first_unknown_ids(
    positions: Sequence[int],
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    known_users: Container[Hashable],
    known_items: Container[Hashable],
) -> str:
    """``user A1, item B7, user A3``: the first few distinct unknown ids of those pairs, in order."""
    shown: dict[str, None] = {}
    for position in positions:
        if users[position] not in known_users:
            shown[f"user {users[position]}"] = None
        if items[position] not in known_items:
            shown[f"item {items[position]}"] = None
        if len(shown) >= SHOWN_IDS:
            break
    return ", ".join(list(shown)[:SHOWN_IDS])
