"""The torch modules behind the rating heads."""

from __future__ import annotations

import torch
from torch import nn

# The paper's code draws every weight of its MLP from U(-0.1, 0.1) and zeroes the biases.
INIT_RANGE = 0.1


class DotProduct(nn.Module):
    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (user * item).sum(dim=-1)


class SigmoidMLP(nn.Module):
    """r = w^T s(W_n ... s(W_1 [u; i] + b_1) ... + b_n) + b with s the sigmoid."""

    def __init__(self, in_features: int, hidden: int, hidden_layers: int) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(hidden, 1)
        for layer in [*self.hidden, self.output]:
            nn.init.uniform_(layer.weight, -INIT_RANGE, INIT_RANGE)
            nn.init.zeros_(layer.bias)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        hidden = torch.cat([user, item], dim=-1)
        for layer in self.hidden:
            hidden = torch.sigmoid(layer(hidden))
        return self.output(hidden).squeeze(-1)
