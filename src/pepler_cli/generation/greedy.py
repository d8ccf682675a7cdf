"""Greedy decoding, the paper's: the most likely token at every step, up to the explanation length.

``greedy_decode`` runs on the key/value cache; ``greedy_decode_naive`` is the paper's method (the whole prefix
through the whole LM at every step), kept as the reference that the cached loop must equal token for token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pepler_cli.generation.logits_processing import NO_CONTROLS, RepetitionControls
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs, positions_from_mask
from pepler_cli.paper import MAX_EXPLANATION_TOKENS
from pepler_cli.plugins import ExplanationModel


@torch.no_grad()
def greedy_decode(
    model: ExplanationModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    max_tokens: int = MAX_EXPLANATION_TOKENS,
    controls: RepetitionControls = NO_CONTROLS,
) -> torch.Tensor:
    """(B, ≤ max_tokens) greedy token ids, the most likely after ``controls`` (none by default: the paper's);
    stops early once every row has produced <eos>."""
    lm = model.decoder(inputs, bos)
    generated = torch.empty((lm.logits.shape[0], 0), dtype=torch.long, device=lm.logits.device)
    token = controls(generated, lm.logits).argmax(dim=-1)
    steps = [token]
    finished = token == eos
    for _ in range(max_tokens - 1):
        # One host sync per step to stop early; cheap next to a forward pass and saves whole steps.
        if bool(finished.all()):
            break
        logits = lm.step(token)
        if controls.active:
            generated = torch.stack(steps, dim=1)
            logits = controls(generated, logits)
        token = logits.argmax(dim=-1)
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
        logits = model.lm(
            inputs_embeds=embedded, attention_mask=mask, position_ids=positions, use_cache=False
        ).logits
        tokens = torch.cat([tokens, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return tokens[:, 1:]


def cut_at_eos(token_ids: Sequence[int], eos: int) -> list[int]:
    """Tokens before the first <eos>, cut on the id (EVALUATION.md), never on decoded text."""
    ids = list(token_ids)
    return ids[: ids.index(eos)] if eos in ids else ids
