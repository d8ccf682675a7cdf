"""Text quality: corpus BLEU and per-pair ROUGE, as the paper computed them (EVALUATION.md).

Inputs are token lists from ``tokens.normalize``. Scores are fractions in [0, 1]; the report scales them
by 100 as the paper's tables do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import chain, groupby, pairwise

Tokens = Sequence[str]


def _ngrams(tokens: Tokens, max_order: int) -> Counter[tuple[str, ...]]:
    """Counts of every n-gram of orders 1..max_order together; a key's length is its order."""
    return Counter(chain.from_iterable(zip(*(tokens[i:] for i in range(n))) for n in range(1, max_order + 1)))


def _ngrams_within(tokens: Tokens, vocabulary: AbstractSet[str], max_order: int) -> Counter[tuple[str, ...]]:
    """Counts of the n-grams made only of ``vocabulary``'s words: the only ones that can match a hypothesis
    with that vocabulary. They lie inside the runs of such words, usually a few short ones."""
    runs = [tuple(run) for inside, run in groupby(tokens, vocabulary.__contains__) if inside]
    return Counter(
        chain.from_iterable(
            zip(*(run[i:] for i in range(n))) for run in runs for n in range(1, max_order + 1)
        )
    )


class TextIndex:
    """Per distinct token list, what BLEU and ROUGE need of it, computed once.

    Generated explanations repeat a lot (the paper's USR is 0.06-0.29), so most of them are counted once for
    the whole corpus instead of once per pair; the per-pair work is then set intersections done in C.
    """

    def __init__(self, max_order: int = 4) -> None:
        self.max_order = max_order
        self._ngram_counts: dict[tuple[str, ...], tuple[frozenset[str], Counter[tuple[str, ...]]]] = {}
        self._rouge_sets: dict[tuple[str, ...], tuple[frozenset[str], frozenset[tuple[str, str]]]] = {}

    def ngram_counts(self, tokens: Tokens) -> tuple[frozenset[str], Counter[tuple[str, ...]]]:
        """The distinct words and the counts of every n-gram of orders 1..max_order (BLEU's clipped counts)."""
        key = tuple(tokens)
        counts = self._ngram_counts.get(key)
        if counts is None:
            counts = self._ngram_counts[key] = (frozenset(key), _ngrams(key, self.max_order))
        return counts

    def rouge_sets(self, tokens: Tokens) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
        """The distinct unigrams and bigrams ROUGE-1/2 compare (an empty text is one empty-string token)."""
        key = tuple(tokens)
        sets = self._rouge_sets.get(key)
        if sets is None:
            words = _rouge_tokens(key)
            sets = self._rouge_sets[key] = (frozenset(words), frozenset(pairwise(words)))
        return sets


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
    references: Sequence[Tokens],
    hypotheses: Sequence[Tokens],
    max_order: int = 4,
    index: TextIndex | None = None,
) -> BleuStatistics:
    """Count clipped n-gram matches over the corpus (one reference per hypothesis)."""
    if index is None or index.max_order < max_order:
        index = TextIndex(max_order)
    matches = [
        pair_bleu_matches(reference, hypothesis, index, max_order)
        for reference, hypothesis in zip(references, hypotheses, strict=True)
    ]
    return sum_bleu_statistics(
        matches, [len(h) for h in hypotheses], [len(r) for r in references], range(len(matches)), max_order
    )


def pair_bleu_matches(
    reference: Tokens, hypothesis: Tokens, index: TextIndex, max_order: int = 4
) -> tuple[int, ...]:
    """The clipped n-gram matches of one pair, n = 1..max_order: what corpus BLEU sums over the pairs."""
    matches = [0] * max_order
    vocabulary, hypothesis_counts = index.ngram_counts(hypothesis)
    if vocabulary.isdisjoint(reference):  # no shared token, no shared n-gram
        return tuple(matches)
    # Generated texts repeat, so their counts come from the index; a reference is usually seen once, so only
    # its n-grams that could match are counted.
    reference_counts = _ngrams_within(reference, vocabulary, max_order)
    for gram in hypothesis_counts.keys() & reference_counts.keys():
        if len(gram) <= max_order:
            matches[len(gram) - 1] += min(hypothesis_counts[gram], reference_counts[gram])
    return tuple(matches)


def sum_bleu_statistics(
    matches: Sequence[tuple[int, ...]],
    hypothesis_lengths: Sequence[int],
    reference_lengths: Sequence[int],
    rows: Iterable[int],
    max_order: int = 4,
) -> BleuStatistics:
    """The corpus statistics of the pairs ``rows``, from each pair's matches and lengths."""
    total = [0] * max_order
    lengths: Counter[int] = Counter()
    reference_length = 0
    for row in rows:
        for n, count in enumerate(matches[row][:max_order]):
            total[n] += count
        lengths[hypothesis_lengths[row]] += 1
        reference_length += reference_lengths[row]
    # A hypothesis of length c has c - n + 1 n-grams of order n (none when n > c).
    possible = [
        sum(count * max(c - n + 1, 0) for c, count in lengths.items()) for n in range(1, max_order + 1)
    ]
    hypothesis_length = sum(c * count for c, count in lengths.items())
    return BleuStatistics(tuple(total), tuple(possible), reference_length, hypothesis_length)


def corpus_bleu(references: Sequence[Tokens], hypotheses: Sequence[Tokens], max_order: int = 4) -> float:
    """Corpus BLEU-``max_order`` in [0, 1]."""
    return bleu_statistics(references, hypotheses, max_order).bleu(max_order)


ROUGE_KEYS = tuple(f"rouge_{n}_{part}" for n in ("1", "2", "l") for part in ("precision", "recall", "f"))


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

    ROUGE-1/2 compare each side's SET of unigrams/bigrams (EVALUATION.md): overlap / max(|hypothesis set|, 1)
    and overlap / max(|reference set|, 1), which is what rouge-score's ``_score_ngrams`` returns when handed
    the sets as counts of one (a test checks the two agree), done here as one C-level set intersection per
    pair. ROUGE-L divides the longest common subsequence by each side's length, as rouge-score does.
    """

    def __init__(self, index: TextIndex | None = None) -> None:
        self.index = index if index is not None else TextIndex()
        self.sums = [0.0] * len(ROUGE_KEYS)  # in ROUGE_KEYS' order
        self.count = 0

    def add(self, reference: Tokens, hypothesis: Tokens) -> None:
        for position, value in enumerate(self.pair(reference, hypothesis)):
            self.sums[position] += value  # added pair by pair, as the paper averaged
        self.count += 1

    def pair(self, reference: Tokens, hypothesis: Tokens) -> tuple[float, ...]:
        """One pair's ROUGE-1/2/L precision, recall and F, in ROUGE_KEYS' order."""
        reference_words, reference_pairs = self.index.rouge_sets(reference)
        hypothesis_words, hypothesis_pairs = self.index.rouge_sets(hypothesis)
        common = reference_words & hypothesis_words
        shared_words = len(common)
        # A shared bigram is made of shared words, and so is a common subsequence.
        shared_pairs = len(reference_pairs & hypothesis_pairs) if shared_words else 0
        reference, hypothesis = _rouge_tokens(reference), _rouge_tokens(hypothesis)
        lcs = _lcs_length(reference, hypothesis, common) if shared_words else 0
        p1, r1 = shared_words / max(len(hypothesis_words), 1), shared_words / max(len(reference_words), 1)
        p2, r2 = shared_pairs / max(len(hypothesis_pairs), 1), shared_pairs / max(len(reference_pairs), 1)
        pl, rl = lcs / len(hypothesis), lcs / len(reference)
        return (p1, r1, harmonic_f(p1, r1), p2, r2, harmonic_f(p2, r2), pl, rl, lcs_f(pl, rl))

    def means(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("ROUGE needs at least one pair")
        return {key: total / self.count for key, total in zip(ROUGE_KEYS, self.sums)}


def _lcs_length(reference: Tokens, hypothesis: Tokens, common: AbstractSet[str]) -> int:
    """The length of the longest common subsequence (the textbook dynamic programme, one row at a time).

    A token missing from the other side can never be in a common subsequence, so such tokens are dropped
    first: the length is unchanged and the quadratic table shrinks several times over.
    """
    a = [t for t in reference if t in common]
    b = [t for t in hypothesis if t in common]
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_scores(
    references: Sequence[Tokens], hypotheses: Sequence[Tokens], index: TextIndex | None = None
) -> dict[str, float]:
    """Mean per-pair ROUGE-1/2/L precision, recall and F in [0, 1], keyed like ``rouge_1_precision``."""
    accumulator = RougeAccumulator(index)
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        accumulator.add(reference, hypothesis)
    return accumulator.means()
