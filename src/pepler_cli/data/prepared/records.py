"""What a prepared dataset holds, in memory: its records (one review each), as tuples or as columns, and the
dataset with its feature set and splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pepler_cli.data.cold_start import ColdSplit, cold_splits
from pepler_cli.data.prepared.layout import MANIFEST_FILE, Split
from pepler_cli.data.splits import check_split
from pepler_cli.errors import PeplerError


class Record(NamedTuple):
    """One review: who, what, the rating, and its explanation with the feature it talks about.

    A NamedTuple rather than a dataclass: a million of them are built on load, and a tuple is built several
    times faster and is smaller.
    """

    user: str
    item: str
    rating: float
    text: str
    feature: str
    opinion: str | None = None
    sentiment: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The records.jsonl object of this record (opinion and sentiment only where known)."""
        row: dict[str, Any] = {
            "user": self.user,
            "item": self.item,
            "rating": self.rating,
            "text": self.text,
            "feature": self.feature,
        }
        if self.opinion is not None:
            row["opinion"] = self.opinion
        if self.sentiment is not None:
            row["sentiment"] = self.sentiment
        return row


@dataclass
class RecordColumns:
    """Records as parallel lists: what ``prepare`` builds, cheaper than a million small objects."""

    users: list[str]
    items: list[str]
    ratings: list[float]
    texts: list[str]
    features: list[str]
    opinions: list[str | None] | None = None
    sentiments: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> RecordColumns:
        return cls(
            users=[r.user for r in records],
            items=[r.item for r in records],
            ratings=[r.rating for r in records],
            texts=[r.text for r in records],
            features=[r.feature for r in records],
            opinions=[r.opinion for r in records],
            sentiments=[r.sentiment for r in records],
        )

    def to_records(self) -> list[Record]:
        n = len(self.users)
        opinions = self.opinions if self.opinions is not None else [None] * n
        sentiments = self.sentiments if self.sentiments is not None else [None] * n
        return [
            Record(*row)
            for row in zip(
                self.users, self.items, self.ratings, self.texts, self.features, opinions, sentiments
            )
        ]


@dataclass
class PreparedDataset:
    """A prepared dataset in memory: records in record-number order, the feature set, the splits."""

    records: list[Record]
    features: list[str]
    splits: dict[int, Split]
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name if self.path else ""))

    @property
    def fingerprint(self) -> str:
        return str(self.manifest.get("fingerprint", ""))

    def split_records(self, k: int) -> tuple[list[Record], list[Record], list[Record]]:
        """The records of split ``k`` (1-based): train, validation, test."""
        if k not in self.splits:
            known = ", ".join(str(key) for key in sorted(self.splits))
            raise PeplerError(f"{self.path or self.name}: no split {k}; the dataset has splits {known}", 2)
        records = self.records
        train, validation, test = self.splits[k]
        return [records[i] for i in train], [records[i] for i in validation], [records[i] for i in test]

    @property
    def splits_checked(self) -> bool:
        """Whether ``prepare`` checked the splits (manifest ``splits.checked``); datasets of older peplers did not."""
        info = self.manifest.get("splits")
        return isinstance(info, dict) and info.get("checked") is True

    @property
    def unseen_allowed(self) -> bool:
        """Whether ``prepare --allow-unseen`` kept validation/test records with ids training never holds."""
        info = self.manifest.get("splits")
        return isinstance(info, dict) and info.get("allow_unseen") is True

    @property
    def cold_splits(self) -> dict[int, ColdSplit]:
        """The cold-start splits (``prepare --cold-start``) by number: whose test part is cold, and K."""
        return cold_splits(self.manifest, Path(self.path or self.name) / MANIFEST_FILE)

    def check_split(self, k: int, allow_unseen: bool, allow_empty: bool = False) -> dict[str, dict[str, int]]:
        """:func:`~pepler_cli.data.splits.check_split` on split ``k`` of this dataset; a cold split's test part
        may hold cold users (items) training never saw."""
        records = self.records
        cold = self.cold_splits.get(k)
        return check_split(
            self.path or self.name,
            k,
            self.splits[k],
            [r.user for r in records],
            [r.item for r in records],
            allow_unseen=allow_unseen,
            allow_empty=allow_empty,
            cold=cold.kind if cold is not None else None,
        )

    def training_ids(self, k: int) -> tuple[set[str], set[str]]:
        """The users and the items of split ``k``'s training part: those a run on that split has trained."""
        records = self.records
        train = self.splits[k][0]
        return {records[i].user for i in train}, {records[i].item for i in train}

    def users(self) -> list[str]:
        """Distinct users in order of first appearance (a stable id per user)."""
        return list(dict.fromkeys(r.user for r in self.records))

    def items(self) -> list[str]:
        """Distinct items in order of first appearance (a stable id per item)."""
        return list(dict.fromkeys(r.item for r in self.records))
