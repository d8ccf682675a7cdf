"""PEPLER's continuous prompt (paper §3.3): a learned user vector and item vector before the words.

The input to the LM is ``[u, i, <bos>, w_1 … w_n, <eos>]`` as embeddings; the loss is the negative
log-likelihood of ``w_1 … w_n, <eos>`` only. The authors' code also scores the prediction of ``<bos>`` from the
item vector; that token is always given, so pepler leaves it out of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pepler_cli.modeling.batch import Batch
from pepler_cli.modeling.loss import linear_cross_entropy_sum

# The authors initialise the prompt vectors from U(-0.1, 0.1).
PROMPT_INIT_RANGE = 0.1
PARAMETER_GROUPS = ("prompt", "rating_head", "lm")


@dataclass
class Losses:
    """Sums, not means, so epoch averages weight every token and every rating equally."""

    text_nll_sum: torch.Tensor
    text_tokens: int
    rating_se_sum: torch.Tensor | None
    ratings: int


class ContinuousPromptModel(nn.Module):
    prompt_kind = "continuous"
    prefix_length = 2

    def __init__(self, lm: nn.Module, n_users: int, n_items: int, rating_head: nn.Module | None = None) -> None:
        super().__init__()
        width = int(lm.get_input_embeddings().embedding_dim)
        self.lm = lm
        self.user_embeddings = nn.Embedding(n_users, width)
        self.item_embeddings = nn.Embedding(n_items, width)
        nn.init.uniform_(self.user_embeddings.weight, -PROMPT_INIT_RANGE, PROMPT_INIT_RANGE)
        nn.init.uniform_(self.item_embeddings.weight, -PROMPT_INIT_RANGE, PROMPT_INIT_RANGE)
        self.rating_head = rating_head

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "prompt": [self.user_embeddings.weight, self.item_embeddings.weight],
            "rating_head": list(self.rating_head.parameters()) if self.rating_head is not None else [],
            "lm": list(self.lm.parameters()),
        }

    def prompt_state(self) -> dict[str, torch.Tensor]:
        """Tensors that are always saved with a run: the prompt and the rating head."""
        state = {"prompt.user": self.user_embeddings.weight, "prompt.item": self.item_embeddings.weight}
        if self.rating_head is not None:
            state.update({f"rating_head.{k}": v for k, v in self.rating_head.state_dict().items()})
        return state

    def load_prompt_state(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.user_embeddings.weight.copy_(state["prompt.user"])
            self.item_embeddings.weight.copy_(state["prompt.item"])
        if self.rating_head is not None:
            prefix = "rating_head."
            head_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            self.rating_head.load_state_dict(head_state, strict=True)

    def prefix_embeddings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B, 2, width): the user vector then the item vector."""
        return torch.stack([self.user_embeddings(users), self.item_embeddings(items)], dim=1)

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        if self.rating_head is None:
            return None
        return self.rating_head(self.user_embeddings(users), self.item_embeddings(items))

    def losses(self, batch: Batch) -> Losses:
        prefix = self.prefix_embeddings(batch.users, batch.items)
        words = self.lm.get_input_embeddings()(batch.tokens)
        inputs = torch.cat([prefix, words], dim=1)
        # Padding sits only at the right end, after every real token, so the causal mask alone keeps it out
        # of every real token's attention; with no attention_mask SDPA can use its fused causal kernel.
        hidden = self.lm.base_model(inputs_embeds=inputs, use_cache=False).last_hidden_state
        # The hidden state at <bos> predicts w_1, …, at w_n predicts <eos>: positions P … P+T-2.
        targets_mask = batch.token_mask[:, 1:]
        predictors = hidden[:, self.prefix_length : -1][targets_mask]
        targets = batch.tokens[:, 1:][targets_mask]
        head = self.lm.get_output_embeddings()
        if getattr(head, "bias", None) is not None:  # not GPT-2's case; keep such heads exact and simple
            nll_sum = F.cross_entropy(head(predictors).float(), targets, reduction="sum")
        else:
            nll_sum = linear_cross_entropy_sum(predictors, head.weight, targets)
        rating_se = None
        if self.rating_head is not None:
            predicted = self.predict_ratings(batch.users, batch.items)
            rating_se = F.mse_loss(predicted.float(), batch.ratings, reduction="sum")
        return Losses(nll_sum, int(targets.shape[0]), rating_se, batch.size)
