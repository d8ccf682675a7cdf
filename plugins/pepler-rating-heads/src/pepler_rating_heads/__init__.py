"""Rating heads for PEPLER's recommendation-as-regularization (paper §3.6).

Both read the same user and item vectors that form the continuous prompt, so the rating loss shapes the
prompt. Importing this module does not import torch; the modules are built on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"

MLP_HIDDEN = 400
MLP_HIDDEN_LAYERS = 2


class MatrixFactorizationHead:
    """MF: the rating is the dot product of the user and item vectors; no parameters of its own."""

    name = "mf"
    description = "matrix factorization: rating = <user vector, item vector> (no extra parameters)"

    def build(self, width: int) -> torch.nn.Module:
        from pepler_rating_heads.modules import DotProduct

        return DotProduct()


class MultiLayerPerceptronHead:
    """MLP (paper equation 13): [u; i] through hidden sigmoid layers of 400, then a linear output."""

    name = "mlp"
    description = (
        f"multi-layer perceptron: {MLP_HIDDEN_LAYERS} hidden layers of {MLP_HIDDEN}, sigmoid (paper eq. 13)"
    )

    def build(self, width: int) -> torch.nn.Module:
        from pepler_rating_heads.modules import SigmoidMLP

        return SigmoidMLP(2 * width, MLP_HIDDEN, MLP_HIDDEN_LAYERS)


MF = MatrixFactorizationHead()
MLP = MultiLayerPerceptronHead()
