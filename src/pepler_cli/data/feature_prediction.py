"""Which feature a user will most likely write about an item, from training data alone (the counts predictor).

``--feature-hint predicted`` needs, for a (user, item) pair, one feature to place in the prompt without reading
the test record. The candidates are the item's features in the training part of the split (what reviewers
said about this item); each is scored by how often the item was reviewed with it times how much this user cares
about it, smoothed towards the feature's overall share so a user with few reviews still ranks the item's own
features:

    score(f) = n_item(f) × (n_user(f) + α · p(f)) / (n_user + α),   p(f) = n(f) / N

An item without training features falls back to the user's features, then to the most frequent feature.
Ties go to the more frequent feature overall, then the alphabetically first. The learned alternative scores
the same candidates with the run's user and item vectors (``modeling.feature_scorer``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

# α: how many reviews' worth of the overall feature distribution a user's own counts are blended with. Chosen on
# the validation part of the bundled dataset's split 1 (hit rate 0.143 with α = 1, 0.155 with 10, 0.158 with 50,
# 0.156 with the user ignored): a user's few reviews say little about the next one's feature.
USER_SMOOTHING = 50.0


@dataclass(frozen=True)
class FeatureCounts:
    """Feature counts per item, per user and overall, in the training part of one split."""

    of_item: dict[str, Counter[str]]
    of_user: dict[str, Counter[str]]
    overall: Counter[str]

    @classmethod
    def from_training(cls, records: Sequence, train_numbers: Sequence[int]) -> FeatureCounts:
        items: defaultdict[str, Counter[str]] = defaultdict(Counter)
        users: defaultdict[str, Counter[str]] = defaultdict(Counter)
        overall: Counter[str] = Counter()
        for n in train_numbers:
            record = records[n]
            items[record.item][record.feature] += 1
            users[record.user][record.feature] += 1
            overall[record.feature] += 1
        return cls(dict(items), dict(users), overall)

    def vocabulary(self) -> list[str]:
        """Every training feature, most frequent first (then alphabetically): a stable order for tensors."""
        return sorted(self.overall, key=lambda f: (-self.overall[f], f))

    def candidates(self, user: str, item: str) -> list[str]:
        """The features a prediction chooses among (the module's docstring), in the vocabulary's order."""
        pool = self.of_item.get(item) or self.of_user.get(user) or Counter(dict(self.overall.most_common(1)))
        return sorted(pool, key=lambda f: (-self.overall[f], f))

    def predict(self, user: str, item: str) -> str:
        """The candidate with the highest score (the module's docstring)."""
        of_item = self.of_item.get(item) or Counter()
        of_user = self.of_user.get(user) or Counter()
        user_total = sum(of_user.values())
        total = max(sum(self.overall.values()), 1)

        def score(feature: str) -> float:
            share = self.overall[feature] / total
            affinity = (of_user[feature] + USER_SMOOTHING * share) / (user_total + USER_SMOOTHING)
            return max(of_item[feature], 1) * affinity

        # candidates() is sorted by the tie-breaks, and max() keeps the first of equal scores.
        return max(self.candidates(user, item), key=score)


def hit_rate(predicted: Sequence[str], actual: Sequence[str]) -> float:
    """Share of pairs whose predicted feature is the record's own (0.0 for no pairs)."""
    if not actual:
        return 0.0
    return sum(p == a for p, a in zip(predicted, actual, strict=True)) / len(actual)
