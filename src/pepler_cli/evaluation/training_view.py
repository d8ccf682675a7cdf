"""What the metrics beyond the paper and the group reports know of a split's training part: which features each
item had, how often each feature and each user and item occur."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pepler_cli.data.prepared.records import PreparedDataset


@dataclass(frozen=True)
class TrainingView:
    """Counts over the training records of one split of a prepared dataset."""

    split_number: int
    item_features: dict[str, frozenset[str]]  # item -> the features of its training records
    feature_counts: Counter[str]  # feature -> training records whose feature it is
    user_counts: Counter[str]  # user -> training records
    item_counts: Counter[str]  # item -> training records

    @classmethod
    def of(cls, dataset: PreparedDataset, split_number: int) -> TrainingView:
        records = dataset.records
        training = [records[i] for i in dataset.splits[split_number][0]]
        item_features: dict[str, set[str]] = {}
        for record in training:
            item_features.setdefault(record.item, set()).add(record.feature)
        return cls(
            split_number=split_number,
            item_features={item: frozenset(features) for item, features in item_features.items()},
            feature_counts=Counter(record.feature for record in training),
            user_counts=Counter(record.user for record in training),
            item_counts=Counter(record.item for record in training),
        )
