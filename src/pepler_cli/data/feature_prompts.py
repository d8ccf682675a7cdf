"""PEPLER-D's discrete prompts (paper §3.2, equation 4): item features from the training data.

For a (user u, item i) pair the prompt lists the features both have been reviewed with, F_u ∩ F_i, then the
rest of their union, (F_u ∪ F_i) \\ (F_u ∩ F_i), cut to 20 BPE tokens. F_u and F_i come from the training
part of the split only. Within each of the two groups, features are ordered by how often they occur in the
training part (most frequent first), then alphabetically, so a prompt never depends on a hash seed (the
authors' code iterated over Python sets, whose order changed from run to run).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pepler_cli.paper import MAX_DISCRETE_PROMPT_TOKENS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from pepler_cli.plugins import Tokenizer


@dataclass(frozen=True)
class FeatureIndex:
    """Who and what was reviewed with which features, in the training part of one split."""

    user_features: dict[str, frozenset[str]]
    item_features: dict[str, frozenset[str]]
    counts: Counter

    @classmethod
    def from_training(cls, records: Sequence, train_numbers: Sequence[int]) -> FeatureIndex:
        users: defaultdict[str, set[str]] = defaultdict(set)
        items: defaultdict[str, set[str]] = defaultdict(set)
        counts: Counter = Counter()
        for n in train_numbers:
            record = records[n]
            users[record.user].add(record.feature)
            items[record.item].add(record.feature)
            counts[record.feature] += 1
        return cls(
            {u: frozenset(f) for u, f in users.items()},
            {i: frozenset(f) for i, f in items.items()},
            counts,
        )

    def ordered(self, features: set[str] | frozenset[str]) -> list[str]:
        return sorted(features, key=lambda f: (-self.counts[f], f))

    def prompt_features(self, user: str, item: str) -> list[str]:
        """Equation 4: shared features first, then the rest of the union."""
        of_user = self.user_features.get(user, frozenset())
        of_item = self.item_features.get(item, frozenset())
        shared = of_user & of_item
        return self.ordered(shared) + self.ordered((of_user | of_item) - shared)

    def prompt_text(self, user: str, item: str) -> str:
        return " ".join(self.prompt_features(user, item))


def encode_prompts(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_tokens: int = MAX_DISCRETE_PROMPT_TOKENS
) -> list[list[int]]:
    """Token ids of each prompt, cut to ``max_tokens``; repeated prompts are encoded once."""
    distinct = list(dict.fromkeys(texts))
    encoded = tokenizer(distinct, add_special_tokens=False)["input_ids"] if distinct else []
    by_text = {text: ids[:max_tokens] for text, ids in zip(distinct, encoded)}
    return [by_text[text] for text in texts]


# A feature hint (``--feature-hint``) is one feature's words; extracted features are a few words, and a
# caller's ``--feature`` is cut to this many tokens like a discrete prompt is cut to its 20.
MAX_HINT_TOKENS = 8


def hint_ids(features: Sequence[str], tokenizer: Tokenizer) -> list[list[int]]:
    """Each feature hint as token ids, cut to ``MAX_HINT_TOKENS``: training and generation encode them alike."""
    return encode_prompts(list(features), tokenizer, MAX_HINT_TOKENS)


def discrete_prompt_ids(records: Sequence, tokenizer: Tokenizer, features: FeatureIndex) -> list[list[int]]:
    """Each record's discrete prompt as token ids: training and generation build them alike."""
    return encode_prompts([features.prompt_text(r.user, r.item) for r in records], tokenizer)
