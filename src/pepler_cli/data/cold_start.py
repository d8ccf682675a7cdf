"""Cold-start splits: a test part of users (or items) that training knows little or nothing of.

``pepler prepare --cold-start K`` adds two splits after the regular ones: the first tests *cold users*, the
second *cold items*. The user split is made so (the item split swaps the roles of users and items), with a
generator seeded by ``f"{seed}/{k}"`` for split k, as :func:`~pepler_cli.data.splits.make_splits` seeds its own:

1. Shuffle the users (in order of first appearance) and walk them once. A user becomes cold when taking it
   brings the cold users' records closer to 10% of all records (one very active user is passed over rather
   than overshoot), and when every item it reviewed keeps a record by a user not taken (every item the test
   part holds is still trained). The walk stops once the cold users hold 10%.
2. For each cold user, in the order taken, with n records: draw k uniformly from 0..min(K, n - 1) and keep a
   random k of its records in training; the others (at least one) make the test part. k = 0 is a user
   training never sees.
3. The other (warm) records are split as the regular splits split theirs, between training and validation
   only: shuffled, a greedy pass puts into training the first record of every warm user and item not yet
   covered, then training is filled to 8/9 of the warm records (the regular 8:1) and validation takes the
   rest. So every warm user and every item is trained, and validation holds warm users only.

The data package knows no model: what a run does with cold users is ``generation/cold_start.py``'s business.
The dataset manifest records each cold split under ``splits.cold_start`` (docs/formats.md); :func:`cold_splits`
reads that back, checked.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pepler_cli.data.prepared.layout import Split
from pepler_cli.data.splits import SPLIT_RATIOS
from pepler_cli.errors import PeplerError
from pepler_cli.files import describe

ColdKind = Literal["user", "item"]
COLD_KINDS: tuple[ColdKind, ColdKind] = ("user", "item")
COLD_SHARE = 0.1  # of all records, in the test part's cold users (items) as drawn, before k are kept back


@dataclass(frozen=True)
class ColdStartSpec:
    """What ``prepare --cold-start K`` asks for: at most ``max_train_records`` training records per cold user
    (item), splits seeded by ``seed``."""

    max_train_records: int
    seed: int


@dataclass(frozen=True)
class ColdSplit:
    """A cold split as the manifest records it: whose test part is cold, and K."""

    kind: ColdKind
    max_train_records: int


def add_cold_splits(
    where: object,
    splits: Mapping[int, Split],
    users: Sequence[Hashable],
    items: Sequence[Hashable],
    spec: ColdStartSpec,
) -> tuple[dict[int, Split], dict[int, dict[str, Any]]]:
    """``splits`` plus the user split and the item split, numbered after the last of them; and the manifest's
    ``splits.cold_start`` entry of each. Data too small to spare a cold user or item is a PeplerError naming
    ``where``."""
    first = max(splits, default=0) + 1
    out = dict(splits)
    info: dict[int, dict[str, Any]] = {}
    for k, kind in zip((first, first + 1), COLD_KINDS):
        own, other = (users, items) if kind == "user" else (items, users)
        split, cold, never_seen = cold_split(own, other, spec.max_train_records, f"{spec.seed}/{k}")
        if not cold:
            raise PeplerError(
                f"{where}: --cold-start: no {kind} can be held out for split {k} (every one is needed in training, "
                f"or the data is too small for 10% of it to be cold {kind}s)"
            )
        out[k] = split
        info[k] = {
            "kind": kind,
            "max_train_records": spec.max_train_records,
            "seed": spec.seed,
            f"cold_{kind}s": cold,
            "never_seen": never_seen,
        }
    return out, info


def cold_split(
    own: Sequence[Hashable], other: Sequence[Hashable], max_train: int, seed: str
) -> tuple[Split, int, int]:
    """One cold split of records 0..n-1, record r by ``own[r]`` on ``other[r]``: its (train, validation, test),
    how many ``own`` ids are cold, and how many of those training never sees. See the module's docstring."""
    rng = random.Random(seed)
    records_of: dict[Hashable, list[int]] = {}
    for r, entity in enumerate(own):
        records_of.setdefault(entity, []).append(r)
    cold = _choose_cold(records_of, other, rng)

    train: list[int] = []
    test: list[int] = []
    never_seen = 0
    for entity in cold:
        numbers = records_of[entity]
        kept = rng.sample(numbers, rng.randint(0, min(max_train, len(numbers) - 1)))
        never_seen += not kept
        train.extend(kept)
        test.extend(set(numbers) - set(kept))
    taken = set(cold)
    warm = [r for r, entity in enumerate(own) if entity not in taken]
    warm_train, validation = _split_warm(warm, own, other, rng)
    return (sorted(train + warm_train), sorted(validation), sorted(test)), len(cold), never_seen


def _choose_cold(
    records_of: Mapping[Hashable, list[int]], other: Sequence[Hashable], rng: random.Random
) -> list[Hashable]:
    """The cold ids, in the order taken (step 1 of the module's docstring)."""
    n = sum(map(len, records_of.values()))
    target = COLD_SHARE * n
    warm_of_other = Counter(other)  # records of each other-side id not yet taken
    order = list(records_of)
    rng.shuffle(order)
    cold: list[Hashable] = []
    total = 0
    for entity in order:
        if total >= target:
            break
        numbers = records_of[entity]
        if abs(total + len(numbers) - target) >= abs(total - target):
            continue
        reviewed = Counter(other[r] for r in numbers)
        if any(warm_of_other[o] <= count for o, count in reviewed.items()):
            continue  # it holds the last warm records of something: that one would never be trained
        warm_of_other.subtract(reviewed)
        cold.append(entity)
        total += len(numbers)
    return cold


def _split_warm(
    warm: list[int], own: Sequence[Hashable], other: Sequence[Hashable], rng: random.Random
) -> tuple[list[int], list[int]]:
    """Warm records into training and validation (step 3): a greedy cover first, then 8:1."""
    rng.shuffle(warm)
    seen_own: set[Hashable] = set()
    seen_other: set[Hashable] = set()
    train: list[int] = []
    rest: list[int] = []
    for r in warm:
        if own[r] in seen_own and other[r] in seen_other:
            rest.append(r)
        else:
            seen_own.add(own[r])
            seen_other.add(other[r])
            train.append(r)
    quota = round(len(warm) * SPLIT_RATIOS[0] / (SPLIT_RATIOS[0] + SPLIT_RATIOS[1]))
    take = max(0, quota - len(train))
    return train + rest[:take], rest[take:]


# ------------------------------------------------------------------------------- the manifest's record


def cold_splits(manifest: Mapping[str, Any], manifest_path: Path | str) -> dict[int, ColdSplit]:
    """The cold splits of a dataset manifest (``splits.cold_start``), checked: {} when there are none; a
    malformed entry is a PeplerError naming the manifest and the field."""
    info = manifest.get("splits")
    entries = info.get("cold_start") if isinstance(info, dict) else None
    if entries is None:
        return {}
    field = "splits.cold_start"
    if not isinstance(entries, dict):
        raise PeplerError(f"{manifest_path}: field '{field}': expected a mapping, got {describe(entries)}")
    count = info.get("count") if isinstance(info, dict) else None
    out: dict[int, ColdSplit] = {}
    for k, entry in entries.items():
        if type(k) is not int or (type(count) is int and not 1 <= k <= count):
            raise PeplerError(f"{manifest_path}: field '{field}': {k!r} is not one of the dataset's splits")
        kind = entry.get("kind") if isinstance(entry, dict) else None
        limit = entry.get("max_train_records") if isinstance(entry, dict) else None
        if kind not in COLD_KINDS:
            raise PeplerError(
                f"{manifest_path}: field '{field}.{k}.kind': expected user or item, got {kind!r}"
            )
        if type(limit) is not int or limit < 0:
            raise PeplerError(
                f"{manifest_path}: field '{field}.{k}.max_train_records': expected an integer ≥ 0, got {limit!r}"
            )
        out[k] = ColdSplit(kind, limit)
    return out
