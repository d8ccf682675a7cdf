"""PEPLER's continuous prompt (paper §3.3): a learned user vector and item vector before the words.

The input to the LM is ``[u, i, <bos>, w_1 … w_n, <eos>]`` as embeddings (``inputs_embeds``).
"""

from __future__ import annotations

import torch
from torch import nn

from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs

# The authors initialise the prompt vectors from U(-0.1, 0.1).
PROMPT_INIT_RANGE = 0.1


class ContinuousPromptModel(PromptModel):
    prompt_kind = "continuous"
    prefix_length = 2

    def __init__(
        self, lm: nn.Module, n_users: int, n_items: int, rating_head: nn.Module | None = None
    ) -> None:
        super().__init__(lm)
        width = int(lm.get_input_embeddings().embedding_dim)
        self.user_embeddings = nn.Embedding(n_users, width)
        self.item_embeddings = nn.Embedding(n_items, width)
        nn.init.uniform_(self.user_embeddings.weight, -PROMPT_INIT_RANGE, PROMPT_INIT_RANGE)
        nn.init.uniform_(self.item_embeddings.weight, -PROMPT_INIT_RANGE, PROMPT_INIT_RANGE)
        self.rating_head = rating_head

    def prompt_parameters(self) -> list[nn.Parameter]:
        return [self.user_embeddings.weight, self.item_embeddings.weight]

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

    def prompt(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.prefix_embeddings(inputs.users, inputs.items), None

    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None:
        if self.rating_head is None:
            return None
        return self.rating_head(self.user_embeddings(users), self.item_embeddings(items))
