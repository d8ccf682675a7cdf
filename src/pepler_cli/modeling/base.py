"""What every prompt kind shares: a prefix of embeddings before ``<bos> words <eos>``, and the loss.

The prefix is the prompt (the kind's own: user/item vectors, or feature words), then the feature hint's words
when there is one (``--feature-hint``), then the chat model's answer opening before ``<bos>``
(``modeling.special_tokens``: ``lead``). Without a hint or a lead it is the prompt alone, as in the paper.

The loss is the negative log-likelihood of the explanation's words and ``<eos>`` only. The authors' code also
scores the prediction of ``<bos>`` from the prompt; that token is always given, so pepler leaves it out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pepler_cli.modeling.batch import Batch, PromptInputs, positions_from_mask
from pepler_cli.modeling.incremental import IncrementalLM
from pepler_cli.modeling.loss import linear_cross_entropy_sum


@dataclass
class Losses:
    """Sums, not means, so epoch averages weight every token and every rating equally.

    ``auxiliary_sum``/``auxiliary_count``: a model's own extra training loss, added as ``auxiliary_weight`` times
    its mean (PETER's context prediction: the explanation's words from the item slot); PEPLER has none. A count
    may stay a tensor on the device (no host sync to read it); :func:`at_least_one` divides by either.
    """

    text_nll_sum: torch.Tensor
    text_tokens: int | torch.Tensor
    rating_se_sum: torch.Tensor | None
    ratings: int
    auxiliary_sum: torch.Tensor | None = None
    auxiliary_count: int | torch.Tensor = 0
    auxiliary_weight: float = 1.0


def at_least_one(count: int | torch.Tensor) -> int | torch.Tensor:
    """A count to divide by, never 0, without reading a device tensor on the host."""
    return count.clamp(min=1) if isinstance(count, torch.Tensor) else max(count, 1)


def is_adapter_parameter(name: str) -> bool:
    """LoRA's matrices are named ``...lora_A...``/``...lora_B...`` by peft, which injects them into the LM."""
    return ".lora_" in name


class PromptModel(nn.Module, ABC):
    """A causal LM behind a prompt; subclasses say how the prompt is made."""

    prompt_kind = ""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.rating_head: nn.Module | None = None
        # Token ids between the prompt (and hint) and <bos>: a chat model's answer opening (special_tokens.py).
        self.lead: tuple[int, ...] = ()

    @abstractmethod
    def prompt(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, P, width) prompt embeddings and a (B, P) mask, or None when nothing is padded."""

    def prefix(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, P', width) everything before <bos> (the module's docstring) and its mask, or None when nothing
        is padded."""
        prompt, mask = self.prompt(inputs)
        if inputs.hint_tokens is None and not self.lead:
            return prompt, mask
        embed = self.lm.get_input_embeddings()
        rows = prompt.shape[0]
        parts = [prompt]
        masks = [
            mask if mask is not None else torch.ones(prompt.shape[:2], dtype=torch.bool, device=prompt.device)
        ]
        if inputs.hint_tokens is not None and inputs.hint_mask is not None:
            parts.append(embed(inputs.hint_tokens).to(prompt.dtype))
            masks.append(inputs.hint_mask)
        if self.lead:
            lead = torch.tensor(self.lead, dtype=torch.long, device=prompt.device).expand(rows, -1)
            parts.append(embed(lead).to(prompt.dtype))
            masks.append(torch.ones_like(lead, dtype=torch.bool))
        full_mask = torch.cat(masks, dim=1)
        # A mask with nothing hidden is dropped, so an unpadded prefix keeps the fused causal attention path.
        return torch.cat(parts, dim=1), (None if mask is None and inputs.hint_tokens is None else full_mask)

    @abstractmethod
    def prompt_parameters(self) -> list[nn.Parameter]:
        """The prompt's own parameters (none for a prompt made of words)."""

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by group: what a tuning stage may train. "lora" holds LoRA adapters injected into the LM
        (none unless a LoRA strategy added them); "lm" the LM's own weights."""
        lm = list(self.lm.named_parameters())
        return {
            "prompt": self.prompt_parameters(),
            "rating_head": list(self.rating_head.parameters()) if self.rating_head is not None else [],
            "lm": [p for name, p in lm if not is_adapter_parameter(name)],
            "lora": [p for name, p in lm if is_adapter_parameter(name)],
        }

    def prompt_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_prompt_state(self, state: dict[str, torch.Tensor]) -> None:
        return None

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        return None

    @property
    def predicts_ratings(self) -> bool:
        return self.rating_head is not None

    def decoder(self, inputs: PromptInputs, bos: int) -> IncrementalLM:
        """The LM behind this prompt, fed one token per step on its key/value cache (generation/)."""
        return IncrementalLM(self, inputs, bos)

    def losses(self, batch: Batch) -> Losses:
        prefix, prefix_mask = self.prefix(batch.prompt_inputs())
        words = self.lm.get_input_embeddings()(batch.tokens)
        inputs = torch.cat([prefix.to(words.dtype), words], dim=1)
        if prefix_mask is None:
            # Padding sits only at the right end, after every real token, so the causal mask alone keeps it
            # out of every real token's attention; with no attention_mask SDPA can use its fused causal kernel.
            hidden = self.lm.base_model(inputs_embeds=inputs, use_cache=False).last_hidden_state
        else:
            mask = torch.cat([prefix_mask, batch.token_mask], dim=1)
            hidden = self.lm.base_model(
                inputs_embeds=inputs,
                attention_mask=mask.long(),
                position_ids=positions_from_mask(mask),
                use_cache=False,
            ).last_hidden_state
        # The hidden state at <bos> predicts w_1, …, at w_n predicts <eos>: positions P … P+T-2.
        targets_mask = batch.token_mask[:, 1:]
        predictors = hidden[:, prefix.shape[1] : -1][targets_mask]
        targets = batch.tokens[:, 1:][targets_mask]
        head = self.lm.get_output_embeddings()
        if getattr(head, "bias", None) is not None:  # not GPT-2's case; keep such heads exact and simple
            nll_sum = F.cross_entropy(head(predictors).float(), targets, reduction="sum")
        else:
            nll_sum = linear_cross_entropy_sum(predictors, head.weight, targets)
        rating_se = None
        predicted = self.predict_ratings(batch.users, batch.items)
        if predicted is not None:
            rating_se = F.mse_loss(predicted.float(), batch.ratings, reduction="sum")
        return Losses(nll_sum, int(targets.shape[0]), rating_se, batch.size)
