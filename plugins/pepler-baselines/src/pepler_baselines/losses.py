"""The baselines' training losses as float32 sums and counts, which batches and devices add up exactly.

The authors' objectives (NRT main.py, Att2Seq main.py, PETER main.py at the commits in the network modules), which
pepler's training loop forms from these sums (``training.loop.objective``, with ``BaselineModel``'s weights):

    text_nll_sum / text_tokens + context_weight * context_nll_sum / context_tokens
        + rating_weight * rating_se_sum / B

with context_weight 1 (PETER; no context term otherwise) and rating_weight 1 (NRT), 0.1 (PETER), none
(Att2Seq). ``text_nll_sum / text_tokens`` is their ``NLLLoss(ignore_index=<pad>)`` (a token mean over the
batch) and ``rating_se_sum / B`` their ``MSELoss``.

PETER's context term scores the item slot's log-distribution against positions 1..``max_words`` of the
authors' fixed 17-id rows [bos, w1 … w15, eos] / [bos, w1 … wn, eos, pad …]: every word, plus the <eos> only
when the text has fewer than ``max_words`` words. pepler pads each batch to its own longest row, so the same
set is ``tokens[:, 1 : 1 + max_words]`` without <pad>.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from pepler_baselines.outputs import TrainOutputs

MAX_WORDS = 15  # the authors' --words: explanations are cut to 15 words, <eos> kept


class Network(Protocol):
    """What the losses need from NRT, Att2Seq or PETER."""

    pad_idx: int

    def forward_train(
        self,
        users: Tensor,
        items: Tensor,
        tokens: Tensor,
        hint: Tensor | None = None,
        hint_mask: Tensor | None = None,
    ) -> TrainOutputs: ...


def training_losses(
    network: Network,
    users: Tensor,
    items: Tensor,
    tokens: Tensor,
    ratings: Tensor | None,
    hint: Tensor | None = None,
    hint_mask: Tensor | None = None,
    max_words: int = MAX_WORDS,
) -> dict[str, Tensor | None]:
    """One teacher-forced pass and its loss sums: text_nll_sum, text_tokens, context_nll_sum, context_tokens,
    rating_se_sum. Sums are float32 whatever the compute dtype; counts are int64 tensors (no device sync).
    Terms a network does not have (context: NRT, Att2Seq; rating: Att2Seq, or no ``ratings``) are None."""
    out = network.forward_train(users, items, tokens, hint=hint, hint_mask=hint_mask)
    pad = network.pad_idx
    text_nll_sum, text_tokens = _nll_sum(out.logits, tokens[:, 1:], pad)
    context_nll_sum = context_tokens = None
    if out.context_logits is not None:
        context_nll_sum, context_tokens = _bag_of_words_nll_sum(
            out.context_logits, tokens[:, 1 : 1 + max_words], pad
        )
    rating_se_sum = None
    if out.rating is not None and ratings is not None:
        rating_se_sum = (out.rating.float() - ratings.float()).square().sum()
    return {
        "text_nll_sum": text_nll_sum,
        "text_tokens": text_tokens,
        "context_nll_sum": context_nll_sum,
        "context_tokens": context_tokens,
        "rating_se_sum": rating_se_sum,
    }


def _nll_sum(logits: Tensor, targets: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """Summed negative log-likelihood of the non-<pad> targets (float32) and their number."""
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=pad, reduction="sum"
    )
    return nll, (targets != pad).sum()


def _bag_of_words_nll_sum(context_logits: Tensor, targets: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """The one (B, V) distribution scored at every non-<pad> target (B, L): gathered, not repeated L times."""
    log_probs = torch.log_softmax(context_logits.float(), dim=-1)
    real = targets != pad
    picked = log_probs.gather(1, targets.masked_fill(~real, 0))
    return -torch.where(real, picked, 0.0).sum(), real.sum()
