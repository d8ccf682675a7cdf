"""What every decoding method does to the next token's scores before choosing: the anti-repetition controls.

``RepetitionControls`` bans repeated n-grams (``no_repeat_ngram``) and penalises tokens already written
(``repetition_penalty``, Keskar et al.'s CTRL penalty: a score s of such a token becomes s * P when s < 0, else
s / P); ``penalise_diversity`` is diverse beam search's Hamming diversity term (Vijayakumar et al.). They are
the formulas of transformers' ``RepetitionPenaltyLogitsProcessor``, ``NoRepeatNGramLogitsProcessor`` and
``HammingDiversityLogitsProcessor``, applied in that library's order (diversity, repetition, n-grams), all
vectorised on the scores' device with no host synchronisation.

Which tokens they look at: the explanation's tokens generated so far, and only those. The prompt is vectors
(or, for a discrete prompt, the model's input words, not the explanation) and <bos> only starts the
explanation. This is what ``generate()`` does when given ``inputs_embeds`` = the prompt's embeddings followed
by <bos>'s: its ``input_ids`` then start empty, so its processors see only the tokens it generates.

What they change: greedy decoding and sampling process the raw logits (sampling before its temperature, top-k
and top-p); beam search processes the log-softmaxed scores, whose processed values it adds up — as
``generate()`` does. The repetition penalty is therefore a different function of the model's output in beam
search than in greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RepetitionControls:
    """``no_repeat_ngram``: no n-gram of this many tokens appears twice in an explanation (0: off).
    ``repetition_penalty``: the CTRL penalty on every token already written (1.0: off)."""

    no_repeat_ngram: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.no_repeat_ngram < 0:
            raise ValueError(f"no-repeat n-gram size must be ≥ 0, got {self.no_repeat_ngram}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition penalty must be > 0, got {self.repetition_penalty}")

    @property
    def active(self) -> bool:
        return self.no_repeat_ngram > 0 or self.repetition_penalty != 1.0

    def __call__(self, generated: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """(rows, vocabulary) ``scores`` after the controls, given the (rows, steps) tokens ``generated`` so
        far. The controls off, ``scores`` themselves come back."""
        if self.repetition_penalty != 1.0:
            scores = penalise_repetitions(generated, scores, self.repetition_penalty)
        if self.no_repeat_ngram > 0:
            scores = ban_repeated_ngrams(generated, scores, self.no_repeat_ngram)
        return scores


NO_CONTROLS = RepetitionControls()  # the default everywhere: the paper's decoding, untouched


def penalise_repetitions(generated: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Every token already in its row's ``generated`` gets s * penalty (s < 0) or s / penalty (else), once
    however often it occurred."""
    if generated.shape[1] == 0:
        return scores
    seen = scores.gather(1, generated)
    return scores.scatter(1, generated, torch.where(seen < 0, seen * penalty, seen / penalty))


def ban_repeated_ngrams(generated: torch.Tensor, scores: torch.Tensor, size: int) -> torch.Tensor:
    """-inf on every token that would complete an n-gram of ``size`` tokens its row has already generated."""
    steps = generated.shape[1]
    if steps < size:
        return scores
    # An n-gram ends with the next token only if its first size-1 tokens are the row's last size-1: match that
    # suffix against every window; a matching window bans its own last token. Windows that do not match put
    # their ban in a spare column past the vocabulary, dropped at the end.
    suffix = generated[:, steps + 1 - size :]
    windows = generated.unfold(1, size, 1)
    matches = (windows[..., :-1] == suffix[:, None]).all(dim=-1)
    vocabulary = scores.shape[-1]
    banned = torch.zeros((scores.shape[0], vocabulary + 1), dtype=torch.bool, device=scores.device)
    banned.scatter_(1, torch.where(matches, windows[..., -1], vocabulary), True)
    return scores.masked_fill(banned[:, :vocabulary], float("-inf"))


def penalise_diversity(scores: torch.Tensor, earlier: torch.Tensor, penalty: float) -> torch.Tensor:
    """(examples, beams, vocabulary) ``scores`` of one group of beams less ``penalty`` × the number of times
    the (examples, k) ``earlier`` groups chose each token at this step (Hamming diversity)."""
    if earlier.shape[1] == 0 or penalty == 0:
        return scores
    counts = torch.zeros((scores.shape[0], scores.shape[-1]), dtype=scores.dtype, device=scores.device)
    counts.scatter_add_(1, earlier, torch.ones_like(earlier, dtype=scores.dtype))
    return scores - penalty * counts[:, None, :]
