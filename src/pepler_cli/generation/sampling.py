"""Top-k and top-p (nucleus) sampling with a temperature, on the key/value cache.

Sampling is reproducible and independent of batching: each example draws its random numbers from its own
``torch.Generator``, created on the model's device and seeded from the option's seed and the example's index
in the whole list being decoded (``first_row`` + its row in the batch). The same seed therefore gives the
same explanations whatever the batch size and whichever batch an example falls in. Generators of different
device types produce different streams, so a seed reproduces results on the same kind of device. A token is
drawn by the Gumbel-max rule with one random number per token id (``pick_tokens``), which keeps the draw
stable under the last-bit differences that another batch size can make in the logits.
"""

from __future__ import annotations

import torch

from pepler_cli.generation.logits_processing import NO_CONTROLS, RepetitionControls
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.plugins import ExplanationModel

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
    model: ExplanationModel,
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
    controls: RepetitionControls = NO_CONTROLS,
) -> torch.Tensor:
    """(B, ≤ max_tokens) sampled token ids; a row is filled with <eos> after its own <eos>.

    ``first_row`` is the index of the batch's first example among all those decoded: with the seed it picks
    each example's random numbers (see the module's docstring). ``top_k=1`` or a tiny ``top_p`` is greedy.
    ``controls`` change the logits before the temperature, top-k and top-p, as in ``generate()``.
    """
    _check_sampling(temperature, top_k, top_p)
    lm = model.decoder(inputs, bos)
    rows, vocabulary = lm.logits.shape
    noise = RowNoise(seed, first_row, rows, lm.logits.device)
    generated = torch.empty((rows, 0), dtype=torch.long, device=lm.logits.device)
    logits = controls(generated, lm.logits)
    token = pick_tokens(logits, noise.uniforms(vocabulary), temperature, top_k, top_p)
    finished = token == eos
    steps = [token]
    for _ in range(1, max_tokens):
        if bool(finished.all()):
            break
        logits = lm.step(token)
        if controls.active:
            logits = controls(torch.stack(steps, dim=1), logits)
        token = pick_tokens(logits, noise.uniforms(vocabulary), temperature, top_k, top_p)
        token = token.masked_fill(finished, eos)
        steps.append(token)
        finished |= token == eos
    return torch.stack(steps, dim=1)
