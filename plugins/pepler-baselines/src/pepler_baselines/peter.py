"""PETER, the PErsonalized Transformer for Explainable Recommendation (Li, Zhang, Chen, "Personalized
Transformer for Explainable Recommendation", ACL 2021), and PETER+ (the same network reading a feature hint),
as in the authors' code: https://github.com/lileipisces/PETER at 1f1d7f616fcce69c90b5cc15ad87d815acc6a753.

Architecture (defaults are the authors' hyper-parameters):

* input sequence (batch first here): [user, item, hint_1 … hint_H, <bos>, w1 …]. Users, items and words have
  their own embedding tables of size ``emsize`` = 512; a hint token (PETER+: the feature, H = 1) is a
  vocabulary word and uses the word embeddings. Every slot is multiplied by sqrt(emsize), the sinusoidal
  positional encoding of its position is added (positions count the user and item slots too), then dropout;
* ``nlayers`` = 2 post-LayerNorm encoder layers: self-attention with ``nhead`` = 2 heads -> dropout -> add ->
  LayerNorm -> Linear 512 -> ``nhid`` = 2048 -> ReLU -> dropout -> Linear 2048 -> 512 -> dropout -> add ->
  LayerNorm; dropout 0.2 everywhere the authors have it (positional encoding, attention weights, inside the
  feed-forward, both residual branches), train mode only. No final LayerNorm;
* the PETER mask: left-to-right, except that the user slot also sees the item slot. Keys that are ``<pad>``
  are masked (the authors' key-padding rule), and so are the padded slots of a left-padded hint
  (``hint_mask``);
* heads on the last layer: rating = Linear 512 -> 512, sigmoid, Linear 512 -> 1 on the user slot; the context
  (bag-of-words) logits from the item slot and the next-word logits from <bos> on share one Linear 512 ->
  ``ntoken`` (``hidden2token``, not tied to the word embeddings).

Two deliberate extensions, both equal to the authors' network on their inputs (no hint, or a one-token hint):
hints longer than one token may be left-padded, and positions count only the real slots, so the amount of hint
padding never changes a row's numbers; decoding keeps every layer's keys and values (``start``/``step``),
which gives the logits the authors get by re-running the whole prefix at every step.

Initialisation: user/item/word embeddings, ``hidden2token``'s and the rating MLP's weights U(-0.1, 0.1), their
biases zero; the encoder layers keep torch's defaults (attention input projection Xavier-uniform with zero
biases, Linear Kaiming-uniform, LayerNorm 1/0), and, as with the authors' (and torch's) layer cloning, every
layer starts as a copy of the first. Parameter names equal the authors' ``state_dict``. The positional table
``pos_encoder.pe`` is not saved (``persistent=False``: it is a fixed function of the position); an incoming
one, as in the authors' checkpoints, is checked against ours and dropped, so their weights load with
``strict=True``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from pepler_baselines.outputs import PAD, TrainOutputs, check_tokens, uniform_

INIT_RANGE = 0.1
PE_TOLERANCE = 1e-5  # how far an incoming positional table may be from ours and still be "the same table"
USER_SLOT, ITEM_SLOT = 0, 1


def sinusoid_table(max_len: int, d_model: int) -> Tensor:
    """Vaswani et al.'s positional encoding: sin on even dimensions, cos on odd ones, (max_len, d_model)."""
    if d_model % 2:
        raise ValueError(f"the sinusoidal encoding needs an even embedding size, got {d_model}")
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


def blocked_positions(length: int, peter_mask: bool, device: torch.device) -> Tensor:
    """(length, length) bool, True where a query may NOT see a key: causal, and user sees item if PETER."""
    blocked = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
    if peter_mask and length > ITEM_SLOT:
        blocked[USER_SLOT, ITEM_SLOT] = False
    return blocked


class _PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table at given positions, then dropout; the table is not in state_dict."""

    def __init__(self, d_model: int, dropout: float, max_len: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoid_table(max_len, d_model), persistent=False)
        self.register_load_state_dict_pre_hook(_drop_saved_table)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """x (B, L, d) plus the table's rows at positions (B, L)."""
        return self.dropout(x + self.pe[positions].to(x.dtype))


def _drop_saved_table(
    module: _PositionalEncoding,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: dict[str, Any],
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """Accept the authors' saved ``pe`` (max_len, 1, d) so strict loading works, after checking it is ours."""
    saved = state_dict.pop(prefix + "pe", None)
    if saved is None or module.pe.is_meta or saved.is_meta:
        return
    saved = saved.reshape(saved.size(0), -1)
    rows = min(saved.size(0), module.pe.size(0))
    if saved.size(1) != module.pe.size(1) or not torch.allclose(
        saved[:rows].to(module.pe), module.pe[:rows], atol=PE_TOLERANCE, rtol=0
    ):
        error_msgs.append(
            f"{prefix}pe: the saved positional table is not the sinusoidal table of this network"
        )


class _SelfAttention(nn.Module):
    """Multi-head self-attention in torch's packed parameter layout, split so keys/values can be cached."""

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"emsize {d_model} is not divisible by nhead {nhead}")
        self.nhead = nhead
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values (B, heads, L, d/heads) of x (B, L, d) in one matrix product."""
        batch, length, d_model = x.shape
        packed = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias)
        packed = packed.view(batch, length, 3, self.nhead, d_model // self.nhead).permute(2, 0, 3, 1, 4)
        query, key, value = packed.unbind(0)
        return query, key, value

    def attend(self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor) -> Tensor:
        """Scaled dot-product attention written out (no fused kernel: the same numbers on every device)."""
        scores = torch.matmul(query * (1.0 / math.sqrt(query.size(-1))), key.transpose(-2, -1))
        weights = self.dropout(scores.masked_fill(blocked, float("-inf")).softmax(dim=-1))
        mixed = torch.matmul(weights, value).transpose(1, 2)
        return self.out_proj(mixed.reshape(mixed.size(0), mixed.size(1), -1))


class _EncoderLayer(nn.Module):
    """A post-LayerNorm encoder layer (ReLU feed-forward) that can extend cached keys and values."""

    def __init__(self, d_model: int, nhead: int, nhid: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, nhid)
        self.linear2 = nn.Linear(nhid, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, blocked: Tensor, past: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, L, d) are the newest positions; past holds the keys/values of every earlier position."""
        query, key, value = self.self_attn.project(x)
        if past is not None:
            key = torch.cat([past[0], key], dim=2)
            value = torch.cat([past[1], value], dim=2)
        x = self.norm1(x + self.dropout1(self.self_attn.attend(query, key, value, blocked)))
        inner = self.dropout(torch.relu(self.linear1(x)))
        x = self.norm2(x + self.dropout2(self.linear2(inner)))
        return x, (key, value)


class _LayerStack(nn.Module):
    """The encoder layers in turn (named like the authors' ``transformer_encoder.layers``)."""

    def __init__(self, layer: _EncoderLayer, nlayers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(nlayers))

    def forward(
        self, x: Tensor, blocked: Tensor, past: list[tuple[Tensor, Tensor]] | None = None
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Last layer's states of the newest positions and every layer's keys/values of all positions."""
        caches = []
        for index, layer in enumerate(self.layers):
            x, cache = layer(x, blocked, None if past is None else past[index])
            caches.append(cache)
        return x, caches


class _RatingMLP(nn.Module):
    """The rating head on the user slot: Linear, sigmoid, Linear to one number."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_model)
        self.linear2 = nn.Linear(d_model, 1)
        uniform_(self.linear1, INIT_RANGE)
        uniform_(self.linear2, INIT_RANGE)

    def forward(self, hidden: Tensor) -> Tensor:
        """(B, d) -> (B,)."""
        return self.linear2(torch.sigmoid(self.linear1(hidden))).squeeze(-1)


@dataclass
class PeterState:
    """Everything decoding needs after the prefix: per layer keys/values (B, heads, L, d/heads), which of the
    L keys are masked (B, L), the position the next token takes (B,), and the first pass's rating and
    context."""

    keys: list[Tensor]
    values: list[Tensor]
    masked: Tensor
    next_position: Tensor
    rating: Tensor
    context_logits: Tensor


@dataclass
class _Pass:
    """One pass: last layer's states (B, L, d), the caches, the key mask and the next position."""

    hidden: Tensor
    caches: list[tuple[Tensor, Tensor]]
    masked: Tensor
    next_position: Tensor


class PETER(nn.Module):
    """PETER / PETER+: one transformer predicts the rating (user slot), the context words (item slot) and the
    explanation (from <bos> on); a hint (PETER+: the feature) sits between the item slot and <bos>."""

    predicts_rating: ClassVar[bool] = True

    def __init__(
        self,
        nuser: int,
        nitem: int,
        ntoken: int,
        emsize: int = 512,
        nhead: int = 2,
        nhid: int = 2048,
        nlayers: int = 2,
        dropout: float = 0.2,
        peter_mask: bool = True,
        pad_idx: int = PAD,
        max_len: int = 5000,
    ) -> None:
        super().__init__()
        self.emsize = emsize
        self.peter_mask = peter_mask
        self.pad_idx = pad_idx
        self.pos_encoder = _PositionalEncoding(emsize, dropout, max_len)
        self.transformer_encoder = _LayerStack(_EncoderLayer(emsize, nhead, nhid, dropout), nlayers)
        self.user_embeddings = nn.Embedding(nuser, emsize)
        self.item_embeddings = nn.Embedding(nitem, emsize)
        self.word_embeddings = nn.Embedding(ntoken, emsize)
        self.hidden2token = nn.Linear(emsize, ntoken)
        self.recommender = _RatingMLP(emsize)
        for module in [self.user_embeddings, self.item_embeddings, self.word_embeddings, self.hidden2token]:
            uniform_(module, INIT_RANGE)

    def forward_train(
        self,
        users: Tensor,
        items: Tensor,
        tokens: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> TrainOutputs:
        """Teacher forcing on [u, i, hint, tokens[:, :-1]]: next-word logits, rating, context logits."""
        check_tokens(tokens)
        run = self._run(users, items, hint, hint_mask, tokens[:, :-1])
        first_word = run.hidden.size(1) - (tokens.size(1) - 1)
        return TrainOutputs(
            logits=self.hidden2token(run.hidden[:, first_word:]),
            rating=self.recommender(run.hidden[:, USER_SLOT]),
            context_logits=self.hidden2token(run.hidden[:, ITEM_SLOT]),
        )

    def predict_ratings(self, users: Tensor, items: Tensor) -> Tensor:
        """(B,) ratings from the user slot; it sees only the user and item slots, so two slots suffice."""
        run = self._run(users, items, None, None, users.new_empty(users.size(0), 0))
        return self.recommender(run.hidden[:, USER_SLOT])

    def start(
        self,
        users: Tensor,
        items: Tensor,
        bos_ids: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> tuple[PeterState, Tensor]:
        """Run [u, i, hint, <bos>] once, keep its keys/values: the state and the first word's logits."""
        run = self._run(users, items, hint, hint_mask, bos_ids.unsqueeze(1))
        state = PeterState(
            keys=[key for key, _ in run.caches],
            values=[value for _, value in run.caches],
            masked=run.masked,
            next_position=run.next_position,
            rating=self.recommender(run.hidden[:, USER_SLOT]),
            context_logits=self.hidden2token(run.hidden[:, ITEM_SLOT]),
        )
        return state, self.hidden2token(run.hidden[:, -1])

    def step(self, state: PeterState, tokens: Tensor) -> tuple[PeterState, Tensor]:
        """Feed one token per row (B,) against the cached keys/values: new state, next logits (B, V)."""
        x = self.word_embeddings(tokens.unsqueeze(1)) * math.sqrt(self.emsize)
        x = self.pos_encoder(x, state.next_position.unsqueeze(1))
        masked = torch.cat([state.masked, (tokens == self.pad_idx).unsqueeze(1)], dim=1)
        # The newest position is last, so left-to-right lets it see every earlier key that is not masked.
        past = list(zip(state.keys, state.values, strict=True))
        hidden, caches = self.transformer_encoder(x, masked[:, None, None, :], past)
        new_state = PeterState(
            keys=[key for key, _ in caches],
            values=[value for _, value in caches],
            masked=masked,
            next_position=state.next_position + 1,
            rating=state.rating,
            context_logits=state.context_logits,
        )
        return new_state, self.hidden2token(hidden[:, -1])

    def reorder(self, state: PeterState, rows: Tensor) -> PeterState:
        """Keep or repeat batch rows of the state (beam search)."""
        return PeterState(
            keys=[key.index_select(0, rows) for key in state.keys],
            values=[value.index_select(0, rows) for value in state.values],
            masked=state.masked.index_select(0, rows),
            next_position=state.next_position.index_select(0, rows),
            rating=state.rating.index_select(0, rows),
            context_logits=state.context_logits.index_select(0, rows),
        )

    def _run(
        self, users: Tensor, items: Tensor, hint: Tensor | None, hint_mask: Tensor | None, words: Tensor
    ) -> _Pass:
        """Embed [u, i, hint, words], encode it with the PETER mask, return the last layer and the caches."""
        slots = [self.user_embeddings(users).unsqueeze(1), self.item_embeddings(items).unsqueeze(1)]
        fixed = users.new_zeros(users.size(0), 2, dtype=torch.bool)
        hint_valid = self._hint_valid(hint, hint_mask, words)
        if hint is not None:
            slots.append(self.word_embeddings(hint))
        slots.append(self.word_embeddings(words))
        masked = torch.cat([fixed, ~hint_valid, words == self.pad_idx], dim=1)
        positions, next_position = self._positions(hint_valid, words.size(1))
        x = self.pos_encoder(torch.cat(slots, dim=1) * math.sqrt(self.emsize), positions)
        blocked = blocked_positions(x.size(1), self.peter_mask, x.device)
        hidden, caches = self.transformer_encoder(x, blocked | masked[:, None, None, :])
        return _Pass(hidden, caches, masked, next_position)

    def _hint_valid(self, hint: Tensor | None, hint_mask: Tensor | None, words: Tensor) -> Tensor:
        """(B, H) True on the hint's real tokens: not padding by hint_mask, not <pad> (the authors' rule)."""
        if hint is None:
            if hint_mask is not None:
                raise ValueError("hint_mask given without a hint")
            return words.new_zeros(words.size(0), 0, dtype=torch.bool)
        if hint.dim() != 2:
            raise ValueError(f"hint must be (batch, hint length), got shape {tuple(hint.shape)}")
        valid = hint != self.pad_idx
        return valid if hint_mask is None else valid & hint_mask.to(torch.bool)

    @staticmethod
    def _positions(hint_valid: Tensor, words: int) -> tuple[Tensor, Tensor]:
        """Positions (B, 2 + H + words) that count only real slots, and the position of the next token (B,).

        With no hint padding this is 0, 1, 2, … as in the authors' code; a padded hint slot (masked as a key,
        its output unread) repeats its predecessor's position, so left padding never moves a real token.
        """
        batch = hint_valid.size(0)
        device = hint_valid.device
        user_item = torch.arange(2, device=device).expand(batch, 2)
        hint_positions = 1 + hint_valid.long().cumsum(dim=1)
        first_word = 2 + hint_valid.long().sum(dim=1)
        word_positions = first_word.unsqueeze(1) + torch.arange(words, device=device)
        positions = torch.cat([user_item, hint_positions, word_positions], dim=1)
        return positions, first_word + words
