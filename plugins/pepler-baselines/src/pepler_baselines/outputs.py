"""What the three baseline networks share: training outputs, the recurrent decoding state, helpers.

Token ids follow the baselines' vocabulary: ``<bos>`` 0, ``<eos>`` 1, ``<pad>`` 2, ``<unk>`` 3. A training row
is ``[bos, w1 … wn, eos, pad …]``, right-padded with ``<pad>`` to the batch's longest row.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

BOS, EOS, PAD, UNK = 0, 1, 2, 3


@dataclass
class TrainOutputs:
    """One teacher-forced pass: the raw scores every loss of the paper's baselines is computed from.

    ``logits`` (B, T-1, V) are taken at input positions 0..T-2 and predict ``tokens[:, 1:]``; ``rating`` (B,)
    is the predicted rating (NRT, PETER) or None (Att2Seq); ``context_logits`` (B, V) is PETER's bag-of-words
    prediction from the item slot, None for the other two.
    """

    logits: Tensor
    rating: Tensor | None
    context_logits: Tensor | None


@dataclass
class RecurrentState:
    """The decoding state of NRT (GRU: ``cell`` is None) and Att2Seq (LSTM): everything the next step needs.

    Both tensors are (layers, B, hidden), torch's recurrent layout: the state is the cache.
    """

    hidden: Tensor
    cell: Tensor | None = None


def reorder_recurrent(state: RecurrentState, rows: Tensor) -> RecurrentState:
    """Keep or repeat batch rows of a recurrent state (beam search); the batch is dimension 1."""
    cell = None if state.cell is None else state.cell.index_select(1, rows)
    return RecurrentState(state.hidden.index_select(1, rows), cell)


def refuse_hint(network: str, hint: Tensor | None, hint_mask: Tensor | None) -> None:
    """NRT and Att2Seq have no input slot for a feature: say so rather than silently ignore a hint."""
    if hint is not None or hint_mask is not None:
        raise ValueError(f"{network} takes no hint (feature tokens); only PETER (PETER+) reads one")


def uniform_(module: nn.Linear | nn.Embedding, bound: float) -> None:
    """The authors' initialisation of embeddings and linear maps: U(-bound, bound) weights, zero biases."""
    nn.init.uniform_(module.weight, -bound, bound)
    bias = getattr(module, "bias", None)
    if bias is not None:
        nn.init.zeros_(bias)


def check_tokens(tokens: Tensor) -> None:
    """Teacher forcing needs at least an input token and a target token per row."""
    if tokens.dim() != 2 or tokens.size(1) < 2:
        raise ValueError(f"tokens must be (batch, length >= 2), got shape {tuple(tokens.shape)}")
