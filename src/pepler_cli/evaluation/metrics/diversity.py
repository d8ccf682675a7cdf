"""Diversity of the generated text: USR within each user's (item's) explanations, Distinct-n, ENTR-n, and the
share of explanations that repeat themselves (Rep-n).

Inputs are token lists from ``tokens.normalize``. An n-gram is n consecutive tokens of one explanation; an
explanation of c tokens has max(c − n + 1, 0) of them, and none spans two explanations.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from itertools import chain

Tokens = Sequence[str]


def grouped_unique_sentence_ratio(explanations: Sequence[Tokens], keys: Sequence[str]) -> float | None:
    """uUSR / iUSR (MAPLE): USR within each key's explanations, averaged over the keys that have at least two.

    With E_u the explanations of key u (a user for uUSR, an item for iUSR) and U₂ the keys with |E_u| ≥ 2:
    uUSR = (1/|U₂|) Σ_{u ∈ U₂} |distinct(E_u)| / |E_u|. A key with a single explanation is left out, its USR
    being 1 whatever the model does. None when no key has two explanations: the metric says nothing then.
    """
    groups: defaultdict[str, list[tuple[str, ...]]] = defaultdict(list)
    for tokens, key in zip(explanations, keys, strict=True):
        groups[key].append(tuple(tokens))
    ratios = [len(set(group)) / len(group) for group in groups.values() if len(group) >= 2]
    if not ratios:
        return None
    return sum(ratios) / len(ratios)


def distinct_n(explanations: Sequence[Tokens], n: int) -> float:
    """Distinct-n at corpus level: distinct n-grams over all n-grams of all explanations together.

    Distinct-n = |{n-grams}| / Σ_k max(c_k − n + 1, 0). PRAG and MAPLE instead average the per-explanation
    ratio, which is a different number (usually much higher), so the two cannot be compared. 0.0 when no
    explanation has n tokens.
    """
    return distinct_from_counts(ngram_counts(explanations, n))


def entropy_n(explanations: Sequence[Tokens], n: int) -> float:
    """ENTR-n: Shannon entropy, in nats (natural log), of the frequency of every n-gram over all explanations.

    ENTR-n = −Σ_g p(g) ln p(g), with p(g) = count(g) / Σ_g' count(g'). 0.0 when there are no n-grams.
    """
    return entropy_from_counts(ngram_counts(explanations, n))


def repeats_ngram(tokens: Tokens, n: int) -> bool:
    """Whether one explanation says the same n tokens twice ("the sound is very good and the sound is very good")."""
    grams = [tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1)]
    return len(set(grams)) < len(grams)


def repeated_ngram_share(explanations: Sequence[Tokens], n: int) -> float:
    """Rep-n: the share of explanations that repeat an n-gram within themselves (0.0 for none). Lower is
    better: a repeat inside one explanation is degenerate decoding, never a second point made."""
    if not explanations:
        return 0.0
    return sum(repeats_ngram(tokens, n) for tokens in explanations) / len(explanations)


def distinct_from_counts(counts: Counter[tuple[str, ...]]) -> float:
    """``distinct_n`` from ``ngram_counts``' result, so Distinct-2 and ENTR-2 can share one count."""
    total = counts.total()
    return len(counts) / total if total else 0.0


def entropy_from_counts(counts: Counter[tuple[str, ...]]) -> float:
    """``entropy_n`` from ``ngram_counts``' result."""
    total = counts.total()
    if not total:
        return 0.0
    # −Σ (c/T) ln(c/T) = ln T − (1/T) Σ c ln c: one logarithm per distinct n-gram and no division in the loop.
    return math.log(total) - sum(c * math.log(c) for c in counts.values()) / total


def ngram_counts(explanations: Sequence[Tokens], n: int) -> Counter[tuple[str, ...]]:
    """How often each n-gram occurs over all explanations."""
    if n < 1:
        raise ValueError(f"n-grams need n >= 1, not {n}")
    # Generated texts repeat a lot, so each distinct one is cut once (in a single C-level count) and only the
    # n-grams of the repeated ones are topped up one by one.
    repeats = Counter(tuple(tokens) for tokens in explanations)
    if n == 1:  # counting bare tokens skips building a 1-tuple per token: several times faster
        tokens_seen = Counter(chain.from_iterable(repeats.elements()))
        unigrams: Counter[tuple[str, ...]] = Counter(
            {(token,): count for token, count in tokens_seen.items()}
        )
        return unigrams
    counts = Counter(chain.from_iterable(_ngrams(tokens, n) for tokens in repeats))
    for tokens, repeat in repeats.items():
        if repeat > 1:
            for gram in _ngrams(tokens, n):
                counts[gram] += repeat - 1
    return counts


def _ngrams(tokens: tuple[str, ...], n: int) -> Iterator[tuple[str, ...]]:
    return zip(*(tokens[i:] for i in range(n)))
