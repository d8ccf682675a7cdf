"""From prepared records to token ids, and from token ids to shuffled, per-batch-padded batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from pepler_cli.data.feature_prompts import FeatureIndex, discrete_prompt_ids, hint_ids
from pepler_cli.modeling.batch import Batch, collate
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.modeling.special_tokens import SpecialTokens, special_tokens
from pepler_cli.plugins import Tokenizer


@dataclass
class Examples:
    """Parallel lists: one entry per example, token ids already wrapped in <bos> … <eos>."""

    record_numbers: list[int]
    users: list[int]
    items: list[int]
    token_ids: list[list[int]]
    ratings: list[float]
    prompt_ids: list[list[int]] | None = None  # discrete prompts only
    hint_ids: list[list[int]] | None = None  # feature hints only: the record's own feature

    def __len__(self) -> int:
        return len(self.users)

    @property
    def target_tokens(self) -> int:
        """Tokens that carry loss: everything after <bos>."""
        return sum(len(ids) - 1 for ids in self.token_ids)


def encode_examples(
    records: Sequence,
    numbers: Sequence[int],
    tokenizer: Tokenizer,
    entities: EntityIndex,
    source: str,
    features: FeatureIndex | None = None,
    token_ids: Sequence[list[int]] | None = None,
    *,
    special: SpecialTokens | None = None,
    hints: bool = False,
    max_tokens: int | None = None,
) -> Examples:
    """The examples ``records[n] for n in numbers``, explanations wrapped in <bos> … <eos>.

    ``token_ids`` are every record's explanation ids already computed (the cache of ``token_cache``);
    without them the chosen explanations are tokenized in one batched call. With ``features`` (a discrete
    prompt) each example also gets its prompt's token ids; with ``hints`` its own feature as a feature hint
    (training always hints the record's feature: what ``--feature-hint`` generates from is chosen then).
    ``special`` frames the explanations (a run's recorded start); by default the tokenizer's <bos> and <eos>.
    ``max_tokens`` cuts each explanation to its first tokens, keeping <eos> after them (a model plugin's own
    length: the baselines' authors cut at 15 words); None keeps them as prepared.
    """
    special = special if special is not None else special_tokens(tokenizer)
    chosen = [records[n] for n in numbers]
    if token_ids is not None:
        encoded = [token_ids[n] for n in numbers]
    else:
        encoded = tokenizer([r.text for r in chosen], add_special_tokens=False)["input_ids"] if chosen else []
    return Examples(
        record_numbers=list(numbers),
        users=[entities.user_row(r.user, f"{source} record {n}") for n, r in zip(numbers, chosen)],
        items=[entities.item_row(r.item, f"{source} record {n}") for n, r in zip(numbers, chosen)],
        token_ids=[[special.bos, *ids[:max_tokens], special.eos] for ids in encoded],
        ratings=[float(r.rating) for r in chosen],
        prompt_ids=discrete_prompt_ids(chosen, tokenizer, features) if features is not None else None,
        hint_ids=hint_ids([r.feature for r in chosen], tokenizer) if hints else None,
    )


# Length bucketing sorts this many batches' worth of shuffled examples at a time: batches of similar lengths,
# while an epoch's order stays random.
BUCKET_POOL_BATCHES = 50


def batch_rows(
    examples: Examples, batch_size: int, generator: torch.Generator | None, by_length: bool
) -> list[list[int]]:
    """Rows of each batch: in order (no generator), shuffled, or shuffled within length buckets."""
    count = len(examples)
    if generator is None:
        return [list(range(s, min(s + batch_size, count))) for s in range(0, count, batch_size)]
    order = torch.randperm(count, generator=generator).tolist()
    if not by_length:
        return [order[s : s + batch_size] for s in range(0, count, batch_size)]
    pool = batch_size * BUCKET_POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, count, pool):
        chunk = sorted(order[start : start + pool], key=lambda row: len(examples.token_ids[row]))
        batches.extend(chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size))
    return [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]


def iterate_batches(
    examples: Examples,
    batch_size: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    by_length: bool = False,
    skip: int = 0,
) -> Iterator[Batch]:
    """Batches in a random order (when ``generator`` is given) or in order, each padded to its own longest;
    ``skip`` leaves out the first batches of that order (a resumed epoch)."""
    for rows in batch_rows(examples, batch_size, generator, by_length)[skip:]:
        yield collate_rows(examples, rows, pad_id)


def collate_rows(examples: Examples, rows: Sequence[int], pad_id: int) -> Batch:
    """The examples ``rows`` as one batch, padded to its own longest."""
    return collate(
        [examples.users[r] for r in rows],
        [examples.items[r] for r in rows],
        [examples.token_ids[r] for r in rows],
        [examples.ratings[r] for r in rows],
        pad_id,
        [examples.prompt_ids[r] for r in rows] if examples.prompt_ids is not None else None,
        [examples.hint_ids[r] for r in rows] if examples.hint_ids is not None else None,
    )


def batch_count(examples: Examples, batch_size: int) -> int:
    return (len(examples) + batch_size - 1) // batch_size
