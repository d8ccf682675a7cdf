"""MF and MLP rating heads: predictions and gradients on hand-made vectors."""

from __future__ import annotations

import torch
from pepler_rating_heads import MF, MLP


def test_mf_is_the_dot_product_and_has_no_parameters():
    head = MF.build(3)
    user = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    item = torch.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    rating = head(user, item)
    assert rating.tolist() == [0.5 - 2.0 + 6.0]
    rating.sum().backward()
    # d(u·i)/du = i and d(u·i)/di = u
    assert user.grad.tolist() == [[0.5, -1.0, 2.0]]
    assert item.grad.tolist() == [[1.0, 2.0, 3.0]]
    assert list(head.parameters()) == []


def test_mlp_has_two_sigmoid_hidden_layers_of_400():
    head = MLP.build(8)
    assert [layer.out_features for layer in head.hidden] == [400, 400]
    assert head.hidden[0].in_features == 16
    assert head.output.out_features == 1
    with torch.no_grad():
        for layer in [*head.hidden, head.output]:
            layer.weight.zero_()
            layer.bias.zero_()
        head.output.bias.fill_(3.5)
        head.output.weight.fill_(1.0)
    # Zero hidden weights: every hidden unit is sigmoid(0) = 0.5, so the output is 400 * 0.5 + 3.5.
    ratings = head(torch.randn(4, 8), torch.randn(4, 8))
    assert torch.allclose(ratings, torch.full((4,), 203.5))


def test_mlp_gradients_reach_both_vectors():
    torch.manual_seed(0)
    head = MLP.build(4)
    user = torch.randn(2, 4, requires_grad=True)
    item = torch.randn(2, 4, requires_grad=True)
    torch.nn.functional.mse_loss(head(user, item), torch.tensor([4.0, 1.0])).backward()
    assert user.grad.abs().sum() > 0 and item.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters())
