"""Greedy decoding of explanations, batched, with a key/value cache.

The paper's code re-runs the whole prefix at every step and computes logits at every position; here the
prompt and <bos> go through the LM once, then each step feeds only the newest token and reuses the cached
keys and values. ``greedy_decode_naive`` keeps the paper's method for the equality test and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from pepler_cli.modeling.continuous import ContinuousPromptModel

MAX_EXPLANATION_TOKENS = 20


@dataclass(frozen=True)
class DecodeOptions:
    max_tokens: int = MAX_EXPLANATION_TOKENS
    batch_size: int = 256


def _start(model: ContinuousPromptModel, users: torch.Tensor, items: torch.Tensor, bos: int) -> torch.Tensor:
    """Input embeddings of the prompt followed by <bos>: (B, prefix + 1, width)."""
    prefix = model.prefix_embeddings(users, items)
    bos_ids = torch.full((users.shape[0], 1), bos, dtype=torch.long, device=users.device)
    return torch.cat([prefix, model.lm.get_input_embeddings()(bos_ids)], dim=1)


@torch.no_grad()
def greedy_decode(
    model: ContinuousPromptModel,
    users: torch.Tensor,
    items: torch.Tensor,
    bos: int,
    eos: int,
    max_tokens: int = MAX_EXPLANATION_TOKENS,
) -> torch.Tensor:
    """(B, ≤ max_tokens) greedy token ids; stops early once every row has produced <eos>."""
    lm_body, lm_head = model.lm.base_model, model.lm.get_output_embeddings()
    output = lm_body(inputs_embeds=_start(model, users, items, bos), use_cache=True)
    cache = output.past_key_values
    token = lm_head(output.last_hidden_state[:, -1]).argmax(dim=-1)
    steps = [token]
    finished = token == eos
    for _ in range(max_tokens - 1):
        # One host sync per step to stop early; cheap next to a forward pass and saves whole steps.
        if bool(finished.all()):
            break
        output = lm_body(input_ids=token[:, None], past_key_values=cache, use_cache=True)
        cache = output.past_key_values
        token = lm_head(output.last_hidden_state[:, -1]).argmax(dim=-1)
        steps.append(token)
        finished |= token == eos
    return torch.stack(steps, dim=1)


@torch.no_grad()
def greedy_decode_naive(
    model: ContinuousPromptModel,
    users: torch.Tensor,
    items: torch.Tensor,
    bos: int,
    max_tokens: int = MAX_EXPLANATION_TOKENS,
) -> torch.Tensor:
    """The paper's decoding: the full prefix through the whole LM, logits at every position, every step."""
    embed = model.lm.get_input_embeddings()
    prefix = model.prefix_embeddings(users, items)
    tokens = torch.full((users.shape[0], 1), bos, dtype=torch.long, device=users.device)
    for _ in range(max_tokens):
        inputs = torch.cat([prefix, embed(tokens)], dim=1)
        logits = model.lm(inputs_embeds=inputs, use_cache=False).logits
        tokens = torch.cat([tokens, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return tokens[:, 1:]


def cut_at_eos(token_ids: Sequence[int], eos: int) -> list[int]:
    """Tokens before the first <eos>, cut on the id (EVALUATION.md), never on decoded text."""
    ids = list(token_ids)
    return ids[: ids.index(eos)] if eos in ids else ids


def decode_in_batches(
    model: ContinuousPromptModel,
    users: Sequence[int],
    items: Sequence[int],
    bos: int,
    eos: int,
    device: torch.device,
    options: DecodeOptions,
) -> Iterator[list[list[int]]]:
    """Yield, batch by batch, each example's generated ids already cut at <eos>."""
    model.eval()
    for start in range(0, len(users), options.batch_size):
        user_ids = torch.as_tensor(users[start : start + options.batch_size], dtype=torch.long).to(device)
        item_ids = torch.as_tensor(items[start : start + options.batch_size], dtype=torch.long).to(device)
        generated = greedy_decode(model, user_ids, item_ids, bos, eos, options.max_tokens).cpu().tolist()
        yield [cut_at_eos(row, eos) for row in generated]
