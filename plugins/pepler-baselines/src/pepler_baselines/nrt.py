"""NRT, the Neural Rating and Tips generation model (Li et al., "Neural Rating Regression with Abstractive
Tips Generation for Recommendation", SIGIR 2017), as its authors re-implemented it without the
review-prediction task for the PETER paper's comparison: https://github.com/lileipisces/NRT at
d457fc8b5f528d5ddf6407df0b1201bec2909c16.

Architecture (defaults are the authors' hyper-parameters):

* user and item embeddings of ``emsize`` = 300 each;
* rating: [u; i] (600) -> Linear to ``nhid`` = 400 -> sigmoid, then ``nlayers`` = 4 independent Linear 400 ->
  400 each followed by a sigmoid, then Linear 400 -> 1. Trained with the squared error, unclipped;
* the decoder's initial state: the predicted rating clamped to [min_rating, max_rating] and cast to an integer
  (truncation, i.e. floor on positive ratings), one-hot over the max - min + 1 rating classes, then
  [u; i; one-hot] -> Linear to 400 -> tanh. The one-hot has no gradient, so the text loss reaches the user and
  item embeddings but not the rating layers;
* decoder: word embeddings ``ntoken`` x 300, a one-layer GRU 300 -> 400, Linear 400 -> ``ntoken``. No dropout,
  no weight tying.

Initialisation: every embedding, every encoder Linear weight and the output Linear weight U(-0.1, 0.1), their
biases zero; the GRU keeps torch's default. Parameter names equal the authors' ``state_dict`` so their weights
load with ``strict=True``.
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

INIT_RANGE = 0.1


class _RatingEncoder(nn.Module):
    """User/item embeddings, the sigmoid MLP predicting the rating, and the map to the GRU's first state."""

    def __init__(
        self, nuser: int, nitem: int, emsize: int, nhid: int, nlayers: int, max_rating: int, min_rating: int
    ) -> None:
        super().__init__()
        self.min_rating = min_rating
        self.max_rating = max_rating
        self.rating_classes = max_rating - min_rating + 1
        self.user_embeddings = nn.Embedding(nuser, emsize)
        self.item_embeddings = nn.Embedding(nitem, emsize)
        self.first_layer = nn.Linear(2 * emsize, nhid)
        self.layers = nn.ModuleList(nn.Linear(nhid, nhid) for _ in range(nlayers))
        self.last_layer = nn.Linear(nhid, 1)
        self.encoder = nn.Linear(2 * emsize + self.rating_classes, nhid)
        linears = [self.first_layer, *self.layers, self.last_layer, self.encoder]
        for module in [self.user_embeddings, self.item_embeddings, *linears]:
            uniform_(module, INIT_RANGE)

    def forward(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """(B,) rating and the GRU's initial state (1, B, nhid) from the same user and item vectors."""
        pair = torch.cat([self.user_embeddings(users), self.item_embeddings(items)], dim=-1)
        hidden = torch.sigmoid(self.first_layer(pair))
        for layer in self.layers:
            hidden = torch.sigmoid(layer(hidden))
        rating = self.last_layer(hidden).squeeze(-1)
        return rating, self._initial_state(pair, rating)

    def _initial_state(self, pair: Tensor, rating: Tensor) -> Tensor:
        """The decoder reads the rating as a class: clamp, truncate to an integer, one-hot (no gradient)."""
        rating_class = (
            rating.detach().clamp(self.min_rating, self.max_rating).to(torch.int64) - self.min_rating
        )
        one_hot = nn.functional.one_hot(rating_class, self.rating_classes).to(pair.dtype)
        state = torch.tanh(self.encoder(torch.cat([pair, one_hot], dim=-1)))
        return state.unsqueeze(0)


class _GRUDecoder(nn.Module):
    """Word embeddings, one GRU layer, the output projection; the GRU's hidden state is the decoding cache."""

    def __init__(self, ntoken: int, emsize: int, nhid: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(ntoken, emsize)
        self.gru = nn.GRU(emsize, nhid, batch_first=True)
        self.linear = nn.Linear(nhid, ntoken)
        uniform_(self.word_embeddings, INIT_RANGE)
        uniform_(self.linear, INIT_RANGE)

    def forward(self, tokens: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Logits (B, L, ntoken) for tokens (B, L) and the hidden state after the last of them."""
        output, hidden = self.gru(self.word_embeddings(tokens), hidden)
        return self.linear(output), hidden


class NRT(nn.Module):
    """NRT: a rating MLP and a GRU explanation decoder whose first state reads the predicted rating."""

    predicts_rating: ClassVar[bool] = True

    def __init__(
        self,
        nuser: int,
        nitem: int,
        ntoken: int,
        emsize: int = 300,
        nhid: int = 400,
        nlayers: int = 4,
        max_rating: float = 5,
        min_rating: float = 1,
        pad_idx: int = PAD,
    ) -> None:
        super().__init__()
        # The authors turn the data's rating bounds into integers with int() (truncation), so do the same.
        self.encoder = _RatingEncoder(nuser, nitem, emsize, nhid, nlayers, int(max_rating), int(min_rating))
        self.decoder = _GRUDecoder(ntoken, emsize, nhid)
        self.pad_idx = pad_idx

    def forward_train(
        self,
        users: Tensor,
        items: Tensor,
        tokens: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> TrainOutputs:
        """Teacher forcing on tokens (B, T): logits for tokens[:, 1:] and the rating, in one pass."""
        refuse_hint("NRT", hint, hint_mask)
        check_tokens(tokens)
        rating, hidden = self.encoder(users, items)
        logits, _ = self.decoder(tokens[:, :-1], hidden)
        return TrainOutputs(logits=logits, rating=rating, context_logits=None)

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        """(B,) predicted ratings, unclipped (the authors clip only when scoring RMSE/MAE)."""
        rating, _ = self.encoder(users, items)
        return rating

    def start(
        self,
        users: Tensor,
        items: Tensor,
        bos_ids: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> tuple[RecurrentState, Tensor]:
        """Encode the pair and feed ``<bos>`` (B,): the state and the logits (B, ntoken) of the first word."""
        refuse_hint("NRT", hint, hint_mask)
        _, hidden = self.encoder(users, items)
        return self.step(RecurrentState(hidden), bos_ids)

    def step(self, state: RecurrentState, tokens: Tensor) -> tuple[RecurrentState, Tensor]:
        """Feed one token per row (B,): the new state and the logits (B, ntoken) of the next token."""
        logits, hidden = self.decoder(tokens.unsqueeze(1), state.hidden)
        return RecurrentState(hidden), logits.squeeze(1)

    def reorder(self, state: RecurrentState, rows: Tensor) -> RecurrentState:
        """Keep or repeat batch rows of the state (beam search)."""
        return reorder_recurrent(state, rows)
