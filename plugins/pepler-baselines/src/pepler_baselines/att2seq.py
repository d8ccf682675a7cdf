"""Att2Seq, attribute-to-sequence review generation (Dong et al., "Learning to Generate Product Reviews from
Attributes", EACL 2017), as the PETER authors re-implemented it for their comparison, without the rating input
and without the attention over attributes: https://github.com/lileipisces/Att2Seq at
acd6f9670b3da3acf498fd600a6eec9164303b04.

Architecture (defaults are the authors' hyper-parameters):

* encoder: user and item embeddings of ``emsize`` = 64 each; [u; i] (128) -> Linear to ``nhid`` * ``nlayers``
  = 512 * 2 -> tanh; columns [l * 512, (l + 1) * 512) are layer l's initial hidden state; cells start at 0;
* decoder: word embeddings ``ntoken`` x ``nhid`` (512, not ``emsize``), a 2-layer LSTM 512 -> 512 with dropout
  0.2 between the layers (train mode only), Linear 512 -> ``ntoken``. No rating prediction, no weight tying.

Initialisation: user/item embeddings and the encoder's Linear weight U(-0.1, 0.1); word embeddings and the
output Linear weight U(-0.08, 0.08); biases zero; the LSTM keeps torch's default. Parameter names equal the
authors' ``state_dict`` so their weights load with ``strict=True``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from pepler_baselines.outputs import (
    PAD,
    RecurrentState,
    TrainOutputs,
    check_tokens,
    refuse_hint,
    reorder_recurrent,
    uniform_,
)

ENCODER_INIT_RANGE = 0.1
DECODER_INIT_RANGE = 0.08


class _PairEncoder(nn.Module):
    """Maps a (user, item) pair to every LSTM layer's initial hidden state."""

    def __init__(self, nuser: int, nitem: int, emsize: int, nhid: int, nlayers: int) -> None:
        super().__init__()
        self.nhid = nhid
        self.nlayers = nlayers
        self.user_embeddings = nn.Embedding(nuser, emsize)
        self.item_embeddings = nn.Embedding(nitem, emsize)
        self.encoder = nn.Linear(2 * emsize, nhid * nlayers)
        for module in [self.user_embeddings, self.item_embeddings, self.encoder]:
            uniform_(module, ENCODER_INIT_RANGE)

    def forward(self, users: Tensor, items: Tensor) -> RecurrentState:
        """The LSTM's first state: hidden (nlayers, B, nhid) from the pair, cell zero."""
        pair = torch.cat([self.user_embeddings(users), self.item_embeddings(items)], dim=-1)
        flat = torch.tanh(self.encoder(pair))
        hidden = flat.view(-1, self.nlayers, self.nhid).transpose(0, 1).contiguous()
        return RecurrentState(hidden, torch.zeros_like(hidden))


class _LSTMDecoder(nn.Module):
    """Word embeddings, the stacked LSTM and the output projection; (hidden, cell) is the decoding cache."""

    def __init__(self, ntoken: int, nhid: int, nlayers: int, dropout: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(ntoken, nhid)
        self.lstm = nn.LSTM(nhid, nhid, nlayers, dropout=dropout, batch_first=True)
        self.linear = nn.Linear(nhid, ntoken)
        uniform_(self.word_embeddings, DECODER_INIT_RANGE)
        uniform_(self.linear, DECODER_INIT_RANGE)

    def forward(self, tokens: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """Logits (B, L, ntoken) for tokens (B, L) and the LSTM state after the last of them."""
        output, (hidden, cell) = self.lstm(self.word_embeddings(tokens), (state.hidden, state.cell))
        return self.linear(output), RecurrentState(hidden, cell)


class Att2Seq(nn.Module):
    """Att2Seq: an MLP encoder of the (user, item) pair that starts a 2-layer LSTM explanation decoder."""

    predicts_rating: ClassVar[bool] = False

    def __init__(
        self,
        nuser: int,
        nitem: int,
        ntoken: int,
        emsize: int = 64,
        nhid: int = 512,
        nlayers: int = 2,
        dropout: float = 0.2,
        pad_idx: int = PAD,
    ) -> None:
        super().__init__()
        self.encoder = _PairEncoder(nuser, nitem, emsize, nhid, nlayers)
        self.decoder = _LSTMDecoder(ntoken, nhid, nlayers, dropout)
        self.pad_idx = pad_idx

    def forward_train(
        self,
        users: Tensor,
        items: Tensor,
        tokens: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> TrainOutputs:
        """Teacher forcing on tokens (B, T): logits for tokens[:, 1:]; Att2Seq predicts no rating."""
        refuse_hint("Att2Seq", hint, hint_mask)
        check_tokens(tokens)
        logits, _ = self.decoder(tokens[:, :-1], self.encoder(users, items))
        return TrainOutputs(logits=logits, rating=None, context_logits=None)

    def predict_ratings(self, users: Tensor, items: Tensor) -> None:
        """Att2Seq has no rating head."""
        return

    def start(
        self,
        users: Tensor,
        items: Tensor,
        bos_ids: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> tuple[RecurrentState, Tensor]:
        """Encode the pair and feed ``<bos>`` (B,): the state and the logits (B, ntoken) of the first word."""
        refuse_hint("Att2Seq", hint, hint_mask)
        return self.step(self.encoder(users, items), bos_ids)

    def step(self, state: RecurrentState, tokens: Tensor) -> tuple[RecurrentState, Tensor]:
        """Feed one token per row (B,): the new state and the logits (B, ntoken) of the next token."""
        logits, state = self.decoder(tokens.unsqueeze(1), state)
        return state, logits.squeeze(1)

    def reorder(self, state: RecurrentState, rows: Tensor) -> RecurrentState:
        """Keep or repeat batch rows of the state (beam search)."""
        return reorder_recurrent(state, rows)
