"""Beam search on the key/value cache: the cached keys and values move with their hypotheses.

Beam search keeps ``beams`` hypotheses per example, scored by the sum of their tokens' log-probabilities.
At each step the ``2 * beams`` best one-token extensions are ranked; those ending in <eos> and ranked among
the first ``beams`` are set aside as finished, and the best ``beams`` not ending in <eos> live on. An
example stops once a finished hypothesis is at least as good as any live one can become; at ``max_tokens``
the live hypotheses compete with the finished ones, as greedy decoding's output is cut there too. The best
one is returned, so ``beams=1`` is exactly greedy decoding. Length normalisation is off by default
(``length_penalty=0``: plain sums, the textbook beam search); with ``length_penalty=a`` a hypothesis of n
tokens (its <eos> included) is ranked by ``sum / n**a``.
"""

from __future__ import annotations

import torch

from pepler_cli.generation.incremental import IncrementalLM
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs


@torch.no_grad()
def beam_search(
    model: PromptModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    max_tokens: int,
    *,
    beams: int = 4,
    length_penalty: float = 0.0,
) -> torch.Tensor:
    """(B, ≤ max_tokens) token ids of each example's best hypothesis, <eos>-terminated when it finished
    (then padded with <eos>). ``beams=1`` is greedy decoding. See the module's docstring for the scoring.
    """
    if beams < 1:
        raise ValueError(f"beams must be ≥ 1, got {beams}")
    if length_penalty < 0:
        raise ValueError(f"length penalty must be ≥ 0, got {length_penalty}")
    lm = IncrementalLM(model, inputs, bos)
    examples, vocabulary = lm.logits.shape
    device = lm.logits.device
    width = beams
    # Every example starts from `beams` copies of its prompt; only the first is live, so the first step's
    # candidates are not repeated `beams` times.
    lm.reorder(torch.arange(examples, device=device).repeat_interleave(width))
    scores = torch.full((examples, width), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.empty((examples, width, 0), dtype=torch.long, device=device)
    best_score = torch.full((examples,), float("-inf"), device=device)  # of finished hypotheses, normalised
    best_tokens = torch.full((examples, max_tokens), eos, dtype=torch.long, device=device)
    best_length = torch.zeros((examples,), dtype=torch.long, device=device)
    done = torch.zeros((examples,), dtype=torch.bool, device=device)
    offsets = torch.arange(examples, device=device)[:, None] * width
    # Each live hypothesis has one <eos> continuation: 2 * width candidates always hold width without it.
    considered = min(2 * width, width * vocabulary)

    for step in range(max_tokens):
        length = step + 1
        log_probs = torch.log_softmax(lm.logits.float(), dim=-1).view(examples, width, vocabulary)
        totals = (scores[:, :, None] + log_probs).view(examples, width * vocabulary)
        top_scores, top_index = torch.topk(totals, considered, dim=-1)  # best first
        origin = torch.div(top_index, vocabulary, rounding_mode="floor")
        token = top_index % vocabulary
        # Only a candidate ranked among the best `width` may finish (so one beam is greedy decoding).
        ends = (token == eos) & torch.isfinite(top_scores)
        ends[:, width:] = False

        # The best candidate ending here (candidates are sorted, so the first <eos> one) may beat the best
        # finished hypothesis so far.
        first_end = ends.int().argmax(dim=-1)
        has_end = ends.any(dim=-1)
        end_score = top_scores.gather(1, first_end[:, None]).squeeze(1) / length**length_penalty
        better = has_end & ~done & (end_score > best_score)
        end_origin = origin.gather(1, first_end[:, None]).squeeze(1)
        best_tokens[:, :step] = torch.where(
            better[:, None], history[torch.arange(examples, device=device), end_origin], best_tokens[:, :step]
        )
        best_tokens[:, step:] = torch.where(better[:, None], eos, best_tokens[:, step:])
        best_score = torch.where(better, end_score, best_score)
        best_length = torch.where(better, length, best_length)

        # The best `width` candidates without <eos> live on (a stable sort keeps their score order).
        keep = torch.sort((token == eos).int(), dim=-1, stable=True).indices[:, :width]
        scores = top_scores.gather(1, keep)
        origin = origin.gather(1, keep)
        token = token.gather(1, keep)
        kept_history = history.gather(1, origin[:, :, None].expand(-1, -1, step))
        history = torch.cat([kept_history, token[:, :, None]], dim=2)

        # Scores only fall as tokens are added, so a live hypothesis can at best end now (no normalisation)
        # or, normalised, keep its score until max_tokens: once a finished one is that good, it is final.
        ceiling = scores[:, 0] / (length if length_penalty == 0 else max_tokens) ** length_penalty
        done |= best_score >= ceiling
        if step == max_tokens - 1 or bool(done.all()):
            break
        lm.reorder((offsets + origin).view(-1))
        lm.step(token.view(-1))

    # At max_tokens the best live hypothesis competes with the finished ones, as greedy's cut output would.
    length = history.shape[2]
    live_score = scores[:, 0] / length**length_penalty
    take_live = ~done & (live_score > best_score)
    best_tokens[:, :length] = torch.where(take_live[:, None], history[:, 0], best_tokens[:, :length])
    best_length = torch.where(take_live, length, best_length)
    return best_tokens[:, : int(best_length.max())]
