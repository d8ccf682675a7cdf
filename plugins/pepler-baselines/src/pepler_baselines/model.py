"""A baseline network as pepler's ``plugins.ExplanationModel``: its losses, parameters, decoder and ratings."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pepler_baselines.losses import training_losses
from pepler_cli.modeling.base import Losses
from pepler_cli.modeling.batch import Batch, PromptInputs


class BaselineModel(nn.Module):
    """The network (``network``: NRT, Att2Seq or PETER) with what pepler's training and decoding call.

    One parameter group, ``model``: the baselines train everything in one stage, as their authors did.
    """

    prompt_kind = "ids"  # the network embeds the user and item ids itself
    lead: tuple[int, ...] = ()

    def __init__(self, network: nn.Module, context_weight: float, max_words: int) -> None:
        super().__init__()
        self.network = network
        self.context_weight = context_weight  # PETER's context loss: 1 (the authors'); no such loss otherwise
        self.max_words = max_words  # explanations were cut to this many words (PETER's context targets)

    @property
    def predicts_ratings(self) -> bool:
        return bool(self.network.predicts_rating)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"model": list(self.network.parameters())}

    def losses(self, batch: Batch) -> Losses:
        sums = training_losses(
            self.network,
            batch.users,
            batch.items,
            batch.tokens,
            batch.ratings,
            batch.hint_tokens,
            batch.hint_mask,
            max_words=self.max_words,
        )
        return Losses(
            text_nll_sum=sums["text_nll_sum"],
            text_tokens=sums["text_tokens"],  # counts stay on the device: no host sync per step
            rating_se_sum=sums["rating_se_sum"],
            ratings=batch.size,
            auxiliary_sum=sums["context_nll_sum"],
            auxiliary_count=sums["context_tokens"] if sums["context_tokens"] is not None else 0,
            auxiliary_weight=self.context_weight,
        )

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        return self.network.predict_ratings(users, items)

    def decoder(self, inputs: PromptInputs, bos: int) -> NetworkDecoder:
        return NetworkDecoder(self.network, inputs, bos)


class NetworkDecoder:
    """``plugins.IncrementalDecoder`` over a network's own ``start``/``step``/``reorder`` (RNN state, or PETER's
    cached keys and values)."""

    def __init__(self, network: Any, inputs: PromptInputs, bos: int) -> None:
        self.network = network
        bos_ids = torch.full_like(inputs.users, bos)
        self.state, logits = network.start(
            inputs.users, inputs.items, bos_ids, inputs.hint_tokens, inputs.hint_mask
        )
        self.logits = logits.float()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.state, logits = self.network.step(self.state, tokens)
        self.logits = logits.float()
        return self.logits

    def reorder(self, rows: torch.Tensor) -> None:
        self.state = self.network.reorder(self.state, rows)
        self.logits = self.logits[rows]
