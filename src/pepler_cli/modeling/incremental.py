"""A prompted LM that is fed one token per row per step, reusing its key/value cache: PEPLER's decoder
(``PromptModel.decoder``, the ``plugins.IncrementalDecoder`` that every decoding method drives).

The paper's code re-runs the whole prefix at every step and computes logits at every position. Here the
prompt and <bos> go through the LM once; each step feeds only the newest token and reuses the cached keys and
values, and the output layer is applied to the last position only.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from pepler_cli.modeling.batch import PromptInputs, positions_from_mask


class Prompted(Protocol):
    """What the decoder reads of a ``modeling.base.PromptModel``: its LM and the embeddings before <bos>."""

    lm: Any

    def prefix(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class IncrementalLM:
    """``logits`` are always those of the next token, (rows, vocabulary) in fp32."""

    def __init__(self, model: Prompted, inputs: PromptInputs, bos: int) -> None:
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
        output = self.body(
            inputs_embeds=embedded, attention_mask=self.mask, position_ids=positions, use_cache=True
        )
        self.cache = output.cache
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
            cache=self.cache,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
        )
        self.cache = output.cache
        self.logits = self.head(output.last_hidden_state[:, -1]).float()
        return self.logits

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given rows, in that order: beam search's cache bookkeeping."""
        self.cache.reorder_cache(rows)
        self.logits = self.logits[rows]
        if self.mask is not None and self.next_position is not None:
            self.mask = self.mask[rows]
            self.next_position = self.next_position[rows]
