"""Decoding explanations, batched, with a key/value cache.

The paper's code re-runs the whole prefix at every step and computes logits at every position. Here the
prompt and <bos> go through the LM once (``IncrementalLM``); each step feeds only the newest token and reuses
the cached keys and values. ``greedy_decode_naive`` keeps the paper's method for the equality test and the
benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from pepler_cli.modeling.base import PromptModel, positions_from_mask
from pepler_cli.modeling.batch import PromptInputs

MAX_EXPLANATION_TOKENS = 20


class IncrementalLM:
    """A prompted LM that is fed one token per row per step; ``logits`` are those of the next token."""

    def __init__(self, model: PromptModel, inputs: PromptInputs, bos: int) -> None:
        self.body = model.lm.base_model
        self.head = model.lm.get_output_embeddings()
        prefix, prefix_mask = model.prefix(inputs)
        rows = prefix.shape[0]
        bos_ids = torch.full((rows, 1), bos, dtype=torch.long, device=prefix.device)
        embedded = torch.cat([prefix, model.lm.get_input_embeddings()(bos_ids).to(prefix.dtype)], dim=1)
        self.mask: torch.Tensor | None = None
        self.next_position: torch.Tensor | None = None
        positions = None
        if prefix_mask is not None:
            self.mask = torch.cat([prefix_mask, torch.ones_like(bos_ids, dtype=torch.bool)], dim=1).long()
            positions = positions_from_mask(self.mask)
            self.next_position = positions[:, -1] + 1
        output = self.body(inputs_embeds=embedded, attention_mask=self.mask, position_ids=positions, use_cache=True)
        self.cache = output.past_key_values
        self.logits = self.head(output.last_hidden_state[:, -1]).float()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed (rows,) tokens; returns and keeps the (rows, vocabulary) logits of the next token."""
        positions = None
        if self.mask is not None and self.next_position is not None:
            self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
            positions = self.next_position[:, None]
            self.next_position = self.next_position + 1
        output = self.body(
            input_ids=tokens[:, None],
            past_key_values=self.cache,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
        )
        self.cache = output.past_key_values
        self.logits = self.head(output.last_hidden_state[:, -1]).float()
        return self.logits

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given rows, in that order: beam search's cache bookkeeping."""
        self.cache.reorder_cache(rows)
        self.logits = self.logits[rows]
        if self.mask is not None and self.next_position is not None:
            self.mask = self.mask[rows]
            self.next_position = self.next_position[rows]


@torch.no_grad()
def greedy_decode(
    model: PromptModel, inputs: PromptInputs, bos: int, eos: int, max_tokens: int = MAX_EXPLANATION_TOKENS
) -> torch.Tensor:
    """(B, ≤ max_tokens) greedy token ids; stops early once every row has produced <eos>."""
    lm = IncrementalLM(model, inputs, bos)
    token = lm.logits.argmax(dim=-1)
    steps = [token]
    finished = token == eos
    for _ in range(max_tokens - 1):
        # One host sync per step to stop early; cheap next to a forward pass and saves whole steps.
        if bool(finished.all()):
            break
        token = lm.step(token).argmax(dim=-1)
        steps.append(token)
        finished |= token == eos
    return torch.stack(steps, dim=1)


@torch.no_grad()
def greedy_decode_naive(
    model: PromptModel, inputs: PromptInputs, bos: int, max_tokens: int = MAX_EXPLANATION_TOKENS
) -> torch.Tensor:
    """The paper's decoding: the full prefix through the whole LM, logits at every position, every step."""
    embed = model.lm.get_input_embeddings()
    prefix, prefix_mask = model.prefix(inputs)
    rows = prefix.shape[0]
    tokens = torch.full((rows, 1), bos, dtype=torch.long, device=prefix.device)
    for _ in range(max_tokens):
        embedded = torch.cat([prefix, embed(tokens)], dim=1)
        mask = positions = None
        if prefix_mask is not None:
            mask = torch.cat([prefix_mask, torch.ones_like(tokens, dtype=torch.bool)], dim=1).long()
            positions = positions_from_mask(mask)
        logits = model.lm(inputs_embeds=embedded, attention_mask=mask, position_ids=positions, use_cache=False).logits
        tokens = torch.cat([tokens, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return tokens[:, 1:]


def cut_at_eos(token_ids: Sequence[int], eos: int) -> list[int]:
    """Tokens before the first <eos>, cut on the id (EVALUATION.md), never on decoded text."""
    ids = list(token_ids)
    return ids[: ids.index(eos)] if eos in ids else ids


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode; ``pepler_cli.decoding`` documents sampling's seeding and beam search's scoring."""

    max_tokens: int = MAX_EXPLANATION_TOKENS
    batch_size: int = 256
    decoding: str = "greedy"  # greedy | beam | top-k | top-p
    beams: int = 4  # beam
    top_k: int = 50  # top-k
    top_p: float = 0.9  # top-p
    temperature: float = 1.0  # top-k and top-p
    seed: int = 1111  # top-k and top-p
    length_penalty: float = 0.0  # beam: rank by sum of log-probs / length**length_penalty; 0 = plain sums

    @classmethod
    def from_config(cls, config: object) -> DecodeOptions:
        """The options that ``config`` (a ``GenerateConfig``) has, by name; the others keep their defaults."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)})


DECODING_METHODS = ("greedy", "beam", "top-k", "top-p")


def decode_batch(
    model: PromptModel, inputs: PromptInputs, bos: int, eos: int, options: DecodeOptions, first_row: int = 0
) -> torch.Tensor:
    """(B, ≤ max_tokens) ids by ``options.decoding``; ``first_row`` (the batch's first example's index among
    all decoded) picks the sampling methods' random numbers, so batching does not change their output."""
    from pepler_cli import decoding

    method = options.decoding
    if method == "greedy":
        return greedy_decode(model, inputs, bos, eos, options.max_tokens)
    if method == "beam":
        return decoding.beam_search(
            model,
            inputs,
            bos,
            eos,
            options.max_tokens,
            beams=options.beams,
            length_penalty=options.length_penalty,
        )
    if method in ("top-k", "top-p"):
        return decoding.sample_decode(
            model,
            inputs,
            bos,
            eos,
            options.max_tokens,
            temperature=options.temperature,
            top_k=options.top_k if method == "top-k" else None,
            top_p=options.top_p if method == "top-p" else None,
            seed=options.seed,
            first_row=first_row,
        )
    raise ValueError(f"unknown decoding {method!r}: expected one of {', '.join(DECODING_METHODS)}")


def decode_in_batches(
    model: PromptModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    device: torch.device,
    options: DecodeOptions,
) -> Iterator[list[list[int]]]:
    """Yield, batch by batch, each example's generated ids already cut at <eos>.

    ``inputs`` holds every example on the host; each batch is moved to ``device`` on its own.
    """
    model.eval()
    total = inputs.users.shape[0]
    for start in range(0, total, options.batch_size):
        rows = torch.arange(start, min(start + options.batch_size, total))
        batch = _to_device(inputs.select(rows), device)
        generated = decode_batch(model, batch, bos, eos, options, first_row=start).cpu().tolist()
        yield [cut_at_eos(row, eos) for row in generated]


def _to_device(inputs: PromptInputs, device: torch.device) -> PromptInputs:
    def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return tensor.to(device, non_blocking=True) if tensor is not None else None

    return PromptInputs(move(inputs.users), move(inputs.items), move(inputs.prompt_tokens), move(inputs.prompt_mask))
