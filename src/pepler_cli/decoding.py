"""Decoding beyond greedy: top-k and top-p (nucleus) sampling with a temperature, and beam search.

Every method feeds the prompt and <bos> through the LM once and then one token per row per step
(``IncrementalLM``), so the prefix is never recomputed; beam search moves the cached keys and values with its
hypotheses (``IncrementalLM.reorder``).

Sampling is reproducible and independent of batching: each example draws its random numbers from its own
``torch.Generator``, created on the model's device and seeded from the option's seed and the example's index
in the whole list being decoded (``first_row`` + its row in the batch). The same seed therefore gives the
same explanations whatever the batch size and whichever batch an example falls in. Generators of different
device types produce different streams, so a seed reproduces results on the same kind of device. A token is
drawn by the Gumbel-max rule with one random number per token id (``pick_tokens``), which keeps the draw
stable under the last-bit differences that another batch size can make in the logits.

Beam search keeps ``beams`` hypotheses per example, scored by the sum of their tokens' log-probabilities.
At each step the ``2 * beams`` best one-token extensions are ranked; those ending in <eos> and ranked among
the first ``beams`` are set aside as finished, and the best ``beams`` not ending in <eos> live on. An
example stops once a finished hypothesis is at least as good as any live one can become; at ``max_tokens``
the live hypotheses compete with the finished ones, as greedy decoding's output is cut there too. The best
one is returned, so ``beams=1`` is exactly greedy decoding. Length
normalisation is off by default (``length_penalty=0``: plain sums, the textbook beam search); with
``length_penalty=a`` a hypothesis of n tokens (its <eos> included) is ranked by ``sum / n**a``.
"""

from __future__ import annotations

import torch

from pepler_cli.generation import IncrementalLM
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs

# splitmix64's constants: a per-example seed that is well mixed even for consecutive indices.
_MASK64 = (1 << 64) - 1


def row_seed(seed: int, row: int) -> int:
    """The seed of example ``row``'s generator: a deterministic mix of the option's seed and the row index."""
    value = (seed * 0x9E3779B97F4A7C15 + row + 1) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    value ^= value >> 31
    return value >> 1  # 63 bits: a valid seed for every generator type


class RowNoise:
    """Each example's own stream of random numbers: a ``torch.Generator`` on ``device`` per row, seeded by
    ``row_seed(seed, first_row + row)``, so an example's numbers do not depend on the rows decoded with it."""

    def __init__(self, seed: int, first_row: int, rows: int, device: torch.device) -> None:
        self.device = device
        self.generators = []
        for row in range(rows):
            generator = torch.Generator(device=device)
            generator.manual_seed(row_seed(seed, first_row + row))
            self.generators.append(generator)

    def uniforms(self, width: int) -> torch.Tensor:
        """(rows, width) numbers in [0, 1): the next ``width`` of every row's stream."""
        return torch.stack([torch.rand(width, generator=g, device=self.device) for g in self.generators])


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top-k must be ≥ 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")


def candidates_mask(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """(rows, vocabulary) True on the tokens that may be drawn: the ``top_k`` most likely (ties with the
    k-th kept too), then the smallest most-likely-first set whose probability, at ``temperature``, reaches
    ``top_p`` (the most likely token is always kept)."""
    keep = torch.ones_like(logits, dtype=torch.bool)
    vocabulary = logits.shape[-1]
    if top_k is not None and top_k < vocabulary:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        keep &= logits >= kth
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(logits.masked_fill(~keep, float("-inf")), dim=-1, descending=True)
        probabilities = torch.softmax(ordered / temperature, dim=-1)
        before = probabilities.cumsum(dim=-1) - probabilities  # probability of the tokens ahead of each
        nucleus = before < top_p
        nucleus[:, 0] = True
        keep &= torch.zeros_like(keep).scatter(1, order, nucleus)
    return keep


def pick_tokens(
    logits: torch.Tensor,
    uniforms: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """(rows,) tokens drawn from (rows, vocabulary) logits restricted by ``candidates_mask``.

    Draws by the Gumbel-max rule: the token with the largest ``logit / temperature + g``, where
    ``g = -log(-log u)`` from the row's (rows, vocabulary) ``uniforms``, one per token id, follows the softmax
    of the kept logits. Because every token id has its own number, a change in the last bits of the logits (a
    different batch size) changes the draw only on a near tie, unlike inverting a sorted cumulative sum.
    """
    logits = logits.float()
    keep = candidates_mask(logits, temperature, top_k, top_p)
    gumbel = -torch.log(-torch.log(uniforms.float()))  # u = 0 gives -inf: that token is never drawn
    scores = (logits / temperature + gumbel).masked_fill(~keep, float("-inf"))
    # A row whose kept scores are all -inf (u = 0 everywhere) falls back to its most likely token.
    best = logits.argmax(dim=-1)
    drawn = scores.argmax(dim=-1)
    return torch.where(torch.isfinite(scores.max(dim=-1).values), drawn, best)


@torch.no_grad()
def sample_decode(
    model: PromptModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    max_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    first_row: int = 0,
) -> torch.Tensor:
    """(B, ≤ max_tokens) sampled token ids; a row is filled with <eos> after its own <eos>.

    ``first_row`` is the index of the batch's first example among all those decoded: with the seed it picks
    each example's random numbers (see the module's docstring). ``top_k=1`` or a tiny ``top_p`` is greedy.
    """
    _check_sampling(temperature, top_k, top_p)
    lm = IncrementalLM(model, inputs, bos)
    rows, vocabulary = lm.logits.shape
    noise = RowNoise(seed, first_row, rows, lm.logits.device)
    token = pick_tokens(lm.logits, noise.uniforms(vocabulary), temperature, top_k, top_p)
    finished = token == eos
    steps = [token]
    for _ in range(1, max_tokens):
        if bool(finished.all()):
            break
        token = pick_tokens(lm.step(token), noise.uniforms(vocabulary), temperature, top_k, top_p)
        token = token.masked_fill(finished, eos)
        steps.append(token)
        finished |= token == eos
    return torch.stack(steps, dim=1)


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


@torch.no_grad()
def sequence_log_probs(
    model: PromptModel, inputs: PromptInputs, bos: int, eos: int, tokens: torch.Tensor
) -> torch.Tensor:
    """(B,) the model's total log-probability of each row of ``tokens`` up to and including its first <eos>
    (all of the row when it has none), computed with the cache, one token per step."""
    lm = IncrementalLM(model, inputs, bos)
    rows, length = tokens.shape
    totals = torch.zeros(rows, device=tokens.device)
    counting = torch.ones(rows, dtype=torch.bool, device=tokens.device)
    for step in range(length):
        if step:
            lm.step(tokens[:, step - 1])
        log_probs = torch.log_softmax(lm.logits.float(), dim=-1)
        totals += torch.where(counting, log_probs.gather(1, tokens[:, step : step + 1]).squeeze(1), 0.0)
        counting &= tokens[:, step] != eos
    return totals
