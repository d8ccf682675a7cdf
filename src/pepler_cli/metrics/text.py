"""Text quality: corpus BLEU and per-pair ROUGE, as the paper computed them (EVALUATION.md).

Inputs are token lists from ``tokens.normalize``. Scores are fractions in [0, 1]; the report scales them
by 100 as the paper's tables do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise

from pepler_cli.errors import PeplerError

Tokens = Sequence[str]


def _ngrams(tokens: Tokens, max_order: int) -> Counter[tuple[str, ...]]:
    """Counts of every n-gram of orders 1..max_order together; a key's length is its order."""
    return Counter(chain.from_iterable(zip(*(tokens[i:] for i in range(n))) for n in range(1, max_order + 1)))


@dataclass(frozen=True)
class BleuStatistics:
    """Corpus totals from which BLEU of any order up to ``len(matches)`` follows."""

    matches: tuple[int, ...]  # clipped n-gram matches summed over the corpus, n = 1, 2, ...
    possible: tuple[int, ...]  # hypothesis n-grams summed over the corpus
    reference_length: int
    hypothesis_length: int

    def bleu(self, max_order: int) -> float:
        """Geometric mean of the 1..max_order precisions times the brevity penalty; no smoothing."""
        if max_order > len(self.matches):
            raise ValueError(f"statistics were counted up to order {len(self.matches)}, not {max_order}")
        # The paper's code divided by these lengths and crashed on an empty corpus; 0 is the honest score.
        if self.hypothesis_length == 0 or self.reference_length == 0:
            return 0.0
        matches = self.matches[:max_order]
        if min(matches) == 0:  # also covers an order with no hypothesis n-grams at all
            return 0.0
        log_mean = sum(math.log(m / p) for m, p in zip(matches, self.possible)) / max_order
        ratio = self.reference_length / self.hypothesis_length
        brevity = math.exp(1.0 - ratio) if ratio > 1.0 else 1.0
        return brevity * math.exp(log_mean)


def bleu_statistics(
    references: Sequence[Tokens], hypotheses: Sequence[Tokens], max_order: int = 4
) -> BleuStatistics:
    """Count clipped n-gram matches over the corpus (one reference per hypothesis)."""
    matches = [0] * max_order
    possible = [0] * max_order
    reference_length = hypothesis_length = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        reference_length += len(reference)
        hypothesis_length += len(hypothesis)
        for n in range(1, min(max_order, len(hypothesis)) + 1):
            possible[n - 1] += len(hypothesis) - n + 1
        if set(reference).isdisjoint(hypothesis):  # no shared token, no shared n-gram: skip the counting
            continue
        reference_counts = _ngrams(reference, max_order)
        hypothesis_counts = _ngrams(hypothesis, max_order)
        # Only n-grams on both sides can match; the key intersection is computed in C, not looped over here.
        for gram in hypothesis_counts.keys() & reference_counts.keys():
            matches[len(gram) - 1] += min(hypothesis_counts[gram], reference_counts[gram])
    return BleuStatistics(tuple(matches), tuple(possible), reference_length, hypothesis_length)


def corpus_bleu(references: Sequence[Tokens], hypotheses: Sequence[Tokens], max_order: int = 4) -> float:
    """Corpus BLEU-``max_order`` in [0, 1]."""
    return bleu_statistics(references, hypotheses, max_order).bleu(max_order)


ROUGE_KEYS = tuple(f"rouge_{n}_{part}" for n in ("1", "2", "l") for part in ("precision", "recall", "f"))


def _bigram_set(tokens: Tokens) -> Counter[tuple[str, str]]:
    # Distinct bigrams, each counted once: the paper's ROUGE-2 works on sets.
    return Counter(set(pairwise(tokens)))


def _rouge_tokens(tokens: Tokens) -> Tokens:
    """The paper split on single spaces, so an empty text is one empty-string token, not none."""
    return tokens if tokens else ("",)


def harmonic_f(precision: float, recall: float) -> float:
    """The paper's ROUGE-N F: the +1e-8 makes a perfect match 0.999999995, not 1.

    rouge-score's own F is 2PR/(P+R) without the 1e-8, so it is recomputed here.
    """
    return 2.0 * precision * recall / (precision + recall + 1e-8)


def lcs_f(precision: float, recall: float) -> float:
    """The paper's ROUGE-L F: (1+β²)PR/(R+β²P) with β = P/R, not the harmonic mean rouge-score reports."""
    if precision == 0.0 or recall == 0.0:
        return 0.0
    beta = precision / recall
    return (1.0 + beta**2) * precision * recall / (recall + beta**2 * precision)


class RougeAccumulator:
    """Sums per-pair ROUGE-1/2/L precision, recall and F; ``means()`` gives the averages in [0, 1].

    The scoring is rouge-score's (``_score_ngrams`` and its LCS table), called on our own tokens: going
    through ``RougeScorer.score`` re-tokenizes both texts for each of the three scorers and made scoring
    32,000 pairs two to three times slower. ROUGE-1/2 hand it each side's SET of unigrams/bigrams as counts
    of one, which turns its clipped counts into the paper's set overlap (the same as EVALUATION.md's unique
    tokens and unique joined bigrams scored as ``rouge1``; a test checks the two agree).
    """

    def __init__(self) -> None:
        # Imported here: rouge-score pulls in nltk and numpy, which the CLI's start-up should not pay for.
        from rouge_score import rouge_scorer

        try:
            self._score_ngrams = rouge_scorer._score_ngrams
            self._lcs_table = rouge_scorer._lcs_table
        except AttributeError:
            raise PeplerError(
                "this rouge-score lacks _score_ngrams/_lcs_table, which pepler scores with; "
                "install rouge-score==0.1.2"
            ) from None
        self.totals = dict.fromkeys(ROUGE_KEYS, 0.0)
        self.count = 0

    def add(self, reference: Tokens, hypothesis: Tokens) -> None:
        reference, hypothesis = _rouge_tokens(reference), _rouge_tokens(hypothesis)
        unigrams = self._score_ngrams(Counter(set(reference)), Counter(set(hypothesis)))
        self._add("rouge_1", unigrams.precision, unigrams.recall, harmonic_f)
        bigrams = self._score_ngrams(_bigram_set(reference), _bigram_set(hypothesis))
        self._add("rouge_2", bigrams.precision, bigrams.recall, harmonic_f)
        lcs = self._lcs_length(reference, hypothesis)
        self._add("rouge_l", lcs / len(hypothesis), lcs / len(reference), lcs_f)
        self.count += 1

    def _lcs_length(self, reference: Tokens, hypothesis: Tokens) -> int:
        # A token missing from the other side can never be in a common subsequence, so dropping such tokens
        # first leaves the LCS length unchanged and shrinks the quadratic table several times over.
        common = set(reference).intersection(hypothesis)
        if not common:
            return 0
        table = self._lcs_table([t for t in reference if t in common], [t for t in hypothesis if t in common])
        return int(table[-1][-1])

    def _add(self, name: str, precision: float, recall: float, f: Callable[[float, float], float]) -> None:
        self.totals[f"{name}_precision"] += precision
        self.totals[f"{name}_recall"] += recall
        self.totals[f"{name}_f"] += f(precision, recall)

    def means(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("ROUGE needs at least one pair")
        return {key: total / self.count for key, total in self.totals.items()}


def rouge_scores(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> dict[str, float]:
    """Mean per-pair ROUGE-1/2/L precision, recall and F in [0, 1], keyed like ``rouge_1_precision``."""
    accumulator = RougeAccumulator()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        accumulator.add(reference, hypothesis)
    return accumulator.means()
