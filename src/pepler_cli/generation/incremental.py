"""A sequence's log-probability under a model, scored through its incremental decoder."""

from __future__ import annotations

import torch

from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.plugins import ExplanationModel


@torch.no_grad()
def sequence_log_probs(
    model: ExplanationModel, inputs: PromptInputs, bos: int, eos: int, tokens: torch.Tensor
) -> torch.Tensor:
    """(B,) the model's total log-probability of each row of ``tokens`` up to and including its first <eos>
    (all of the row when it has none), computed with the cache, one token per step."""
    lm = model.decoder(inputs, bos)
    rows, length = tokens.shape
    totals = torch.zeros(rows, device=tokens.device)
    counting = torch.ones(rows, dtype=torch.bool, device=tokens.device)
    for step in range(length):
        if step:
            lm.step(tokens[:, step - 1])
        log_probs = torch.log_softmax(lm.logits.float(), dim=-1)
        totals += torch.where(counting, log_probs.gather(1, tokens[:, step : step + 1]).squeeze(1), 0.0)
        counting &= tokens[:, step] != eos
    return totals
