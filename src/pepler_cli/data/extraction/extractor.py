"""The extractor: the corpus pass (``fit``), the choice of one explanation per review, and the batch API.

``FeatureExtractor`` keeps features the corpus supports, joins frequent compounds and drops nouns naming the
item or a brand; ``extract_explanations`` fits on a list of reviews and extracts from each, tagging every
sentence once where memory allows and reporting progress. ``Explanation`` is what it returns.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from pepler_cli.data.extraction.linking import _ATTRIBUTIVE, _NEARBY, _analyse, _Analysis, _Pair, _pairs
from pepler_cli.data.extraction.phrases import (
    _adjective_polarity,
    _modifier,
    _opinions,
    _sentiment,
    _with_compounds,
)
from pepler_cli.data.extraction.resources import _Resources, _resources
from pepler_cli.data.extraction.sentences import split_sentences

MIN_SENTENCE_WORDS = 4
MAX_SENTENCE_WORDS = 40


@dataclass(frozen=True)
class Explanation:
    feature: str  # lowercase feature phrase, e.g. "sound", "battery life"
    opinion: str  # the opinion word, e.g. "crisp"
    sentence: str  # the sentence from the review, as written (whitespace-normalised)
    sentiment: int  # +1 or -1


_DEMONSTRATIVES = frozenset(("this", "these", "my"))
_ADDRESSING = frozenset(("from", "to", "call", "called", "contact", "contacted"))


@dataclass
class _CorpusCounts:
    features: Counter[str] = field(default_factory=Counter)  # sentences mentioning a noun phrase
    owned: Counter[str] = field(default_factory=Counter)  # ... right after "this/these/my"
    compounds: Counter[str] = field(default_factory=Counter)  # ... right after a possible modifier
    words: Counter[str] = field(default_factory=Counter)  # words after the first of a sentence
    capitalised: Counter[str] = field(default_factory=Counter)  # ... written with a capital there
    acronyms: Counter[str] = field(default_factory=Counter)  # ... written in capitals ("HP", "USB")
    addressed: Counter[str] = field(default_factory=Counter)  # ... bare after "from/to/call" ("called HP")

    def add(self, a: _Analysis, res: _Resources) -> None:
        spans = a.spans
        self.words.update(w.lower() for w in a.words[1:])
        self.capitalised.update(w.lower() for w in a.words[1:] if w[:1].isupper() and not w.isupper())
        self.acronyms.update(w.lower() for w in a.words[1:] if len(w) > 1 and w.isupper())
        self.addressed.update(
            a.words[k + 1].lower() for k in range(len(a.words) - 1) if a.words[k].lower() in _ADDRESSING
        )
        self.features.update({sp.feature for sp in spans} | {sp.feature.rsplit(" ", 1)[-1] for sp in spans})
        self.owned.update(
            {sp.feature for sp in spans if sp.start and a.words[sp.start - 1].lower() in _DEMONSTRATIVES}
        )
        modified = ((_modifier(a.words, a.tags, sp, res), sp.feature) for sp in spans)
        self.compounds.update({f"{m} {f}" for m, f in modified if m is not None})


@dataclass
class FeatureExtractor:
    """Pairs features with opinions; ``fit`` adds the corpus-level filter Sentires applies.

    min_count: a feature must appear as a noun phrase in at least this many sentences of the fitted
        corpus, unless the sentence binds it to its opinion by syntax ("the X is ADJ", "ADJ X"); a rare
        compound falls back to its head noun. Ignored until ``fit`` is called.
    item_share: nouns that follow "this/these/my" in at least this share of their mentions name the
        reviewed item itself ("this laptop", "my guitar"), not one of its features.
    compound_share: a modifier + noun ("hard drive") is one feature when at least this share of the
        noun's mentions carry that modifier.
    descriptive_share: the same share for a modifier that is no opinion word ("operating system",
        "external mouse", "customer support").
    frequent_share: a feature mentioned in at least this share of the corpus's sentences is frequent; in a
        sentence, a frequent feature is preferred to a rare one (measured on SemEval-2014: people name the
        aspects a corpus keeps talking about).
    addressed_share: a word mostly written in capitals names a company, not a part, when at least this share
        of its mentions follow "from/to/call/contact" directly ("called HP"; "USB" and "RAM" never do).
    """

    min_count: int = 3
    item_share: float = 0.25
    compound_share: float = 0.5
    descriptive_share: float = 0.1
    frequent_share: float = 0.003
    addressed_share: float = 0.1
    counts: Counter[str] = field(default_factory=Counter, init=False, repr=False)  # sentences per feature
    frequent: int = field(default=0, init=False)  # the mentions that make a feature frequent
    fitted: bool = field(default=False, init=False)
    _items: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _compounds: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _names: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def fit(self, texts: Iterable[str]) -> FeatureExtractor:
        return self._fit_analysed(_analyse(s) for text in texts for s in split_sentences(text))

    def _fit_analysed(self, analyses: Iterable[_Analysis]) -> FeatureExtractor:
        res = _resources()
        corpus = _CorpusCounts()
        sentences = 0
        for sentences, analysis in enumerate(analyses, start=1):
            corpus.add(analysis, res)
        self.frequent = max(self.min_count, math.ceil(self.frequent_share * sentences))
        self._compounds = frozenset(
            c
            for c, n in corpus.compounds.items()
            if n >= self.min_count and n >= self._share(c) * corpus.features[c.split(" ", 1)[1]]
        )
        self.counts = corpus.features + Counter({c: corpus.compounds[c] for c in self._compounds})
        # Words people capitalise inside sentences are names (brands, models, places), not features.
        self._names = frozenset(w for w, n in corpus.capitalised.items() if n >= 0.5 * corpus.words[w])
        # An acronym is a part ("USB", "RAM") unless people deal with it as with a company ("called HP", "sent
        # it back to HP", "bought from HP"): a part is hardly ever bare after those words.
        self._names |= frozenset(
            w
            for w, n in corpus.acronyms.items()
            if n >= 0.5 * corpus.words[w] and corpus.addressed[w] >= max(2, self.addressed_share * n)
        )
        self._items = frozenset(
            f
            for f, n in corpus.owned.items()
            if n >= self.min_count and n >= self.item_share * corpus.features[f]
        )
        self.fitted = True
        return self

    def _share(self, compound: str) -> float:
        """The share of its noun's mentions a compound needs: less when the modifier judges nothing."""
        res = _resources()
        modifier = compound.split(" ", 1)[0]
        if modifier in res.adjectives or _adjective_polarity(modifier, "JJ", res):
            return self.compound_share  # "great sound" is an opinion on the sound, not a kind of sound
        return self.descriptive_share

    def _accept(self, pair: _Pair) -> _Pair | None:
        """The pair with its feature as the corpus supports it, or None."""
        if not self.fitted:
            return pair
        for feature in dict.fromkeys((pair.feature, pair.head)):
            # Syntax vouches for a rare feature ("the broth is bland"); mere proximity does not. A rare
            # compound of nouns the corpus knows ("stock screen", "volume control") stays whole.
            known = self.counts[feature] >= self.min_count or pair.strength >= _ATTRIBUTIVE
            known = known or (" " in feature and self.counts[feature.rsplit(" ", 1)[-1]] >= self.min_count)
            if known and not self._is_item(feature):
                return pair if feature == pair.feature else replace(pair, feature=feature)
        return None

    def _is_item(self, feature: str) -> bool:
        # "laptops" names the item as much as "laptop" does; a brand names it too.
        head = feature.rsplit(" ", 1)[-1]
        return (
            feature in self._items
            or (feature.endswith("s") and feature[:-1] in self._items)
            or head in self._items  # "gaming laptop", "pc laptops": a kind of the item is the item
            or (head.endswith("s") and head[:-1] in self._items)
            or head in self._names
        )

    def _is_frequent(self, feature: str) -> bool:
        return not self.fitted or self.counts[feature] >= self.frequent

    def _best_pair(self, analysis: _Analysis) -> _Pair | None:
        accepted = [p for p in map(self._accept, _pairs(analysis, self._compounds)) if p is not None]
        if not accepted:
            return self._loose_pair(analysis)
        # A syntactic link first, then a frequent feature, then the stronger pattern, then a clear opinion
        # ("small, compact and sturdy": sturdy), then proximity.
        best = min(
            accepted,
            key=lambda p: (
                p.strength <= _NEARBY,
                not self._is_frequent(p.feature),
                -p.strength,
                not p.strong,
                p.distance,
                p.position,
                p.feature,
                p.opinion,
            ),
        )
        if self._is_frequent(best.feature):
            return best
        # Only a rare feature is linked to an opinion: a frequent one the sentence names is more likely
        # what it is about ("impressed with the battery life ... for such a small amount": battery life).
        spans = _with_compounds(analysis.words, analysis.tags, analysis.spans, self._compounds, _resources())
        frequent = [sp for sp in spans if self._is_frequent(sp.feature) and not self._is_item(sp.feature)]
        if not frequent:
            return best
        return replace(
            best, feature=min(frequent, key=lambda sp: (-self.counts[sp.feature], sp.start)).feature
        )

    def _loose_pair(self, analysis: _Analysis) -> _Pair | None:
        """No pattern links a feature to an opinion, yet the sentence judges something and names one feature the
        corpus keeps talking about ("Design: very durable.", "Screen is a bit glossy, but that's not too bad"):
        that feature, with the nearest adjective or opinion noun, as the weakest kind of pair."""
        if not self.fitted:
            return None
        res = _resources()
        spans = _with_compounds(analysis.words, analysis.tags, analysis.spans, self._compounds, res)
        frequent = {
            sp.feature: sp for sp in spans if self._is_frequent(sp.feature) and not self._is_item(sp.feature)
        }
        if not frequent:
            return None
        taken = {k for sp in spans for k in range(sp.start, sp.end)}
        opinions = _opinions(analysis.words, analysis.tags, taken, res)
        judged = [op for op in opinions if op.kind in ("adj", "plain", "noun")]
        if not judged:
            return None
        span, op = min(
            ((sp, o) for sp in frequent.values() for o in judged),
            key=lambda p: (abs(p[1].at - p[0].start), p[0].start, p[1].at),
        )
        distance = abs(op.at - span.start)
        sentiment = _sentiment(analysis.words, op.at, op.polarity)
        head = span.feature.rsplit(" ", 1)[-1]
        return _Pair(span.feature, head, op.word, sentiment, 0, abs(op.polarity) >= 0.5, distance, span.start)

    def extract_from_sentence(self, sentence: str) -> Explanation | None:
        sentence = " ".join(sentence.split())
        pair = self._best_pair(_analyse(sentence))
        return None if pair is None else Explanation(pair.feature, pair.opinion, sentence, pair.sentiment)

    def extract(self, review_text: str) -> Explanation | None:
        """The best explanation sentence of a review, or None."""
        return self._extract_analysed([_analyse(s) for s in split_sentences(review_text) if _usable(s)])

    def _extract_analysed(self, analyses: Iterable[_Analysis]) -> Explanation | None:
        # Strongest pattern first, then the feature the corpus mentions most, then the earlier sentence.
        best: tuple[tuple[int, bool, int, int], Explanation] | None = None
        for position, analysis in enumerate(analyses):
            pair = self._best_pair(analysis)
            if pair is None:
                continue
            key = (-pair.strength, not pair.strong, -self.counts[pair.feature], position)
            if best is None or key < best[0]:
                best = (key, Explanation(pair.feature, pair.opinion, analysis.sentence, pair.sentiment))
        return None if best is None else best[1]


def _usable(sentence: str) -> bool:
    # Explanations become language-model targets: neither fragments nor run-on paragraphs.
    return MIN_SENTENCE_WORDS <= len(sentence.split()) <= MAX_SENTENCE_WORDS


# Tagged sentences kept between the corpus pass and the extraction (about 2 kB each): enough for tens of
# thousands of reviews; beyond that the extraction tags the remaining reviews again instead of holding
# the whole corpus in memory.
_CACHED_SENTENCES = 150_000


# Why a review yields no explanation, as ``prepare`` counts it: nothing written; no sentence of 4 to 40 words;
# no feature the corpus supports; features, but no opinion word linked to one.
EMPTY, NO_SENTENCE, NO_FEATURE, NO_OPINION = "empty", "no_sentence", "no_feature", "no_opinion"


def extract_explanations(
    texts: Sequence[str], progress: Callable[[int], None] | None = None, reasons: Counter[str] | None = None
) -> list[Explanation | None]:
    """Fit on ``texts`` and extract one explanation per text.

    ``progress(n)`` is called every few hundred texts with ``n`` rising to ``len(texts)``: the corpus pass
    counts for the first half, the extraction for the second. ``reasons``, when given, counts why the texts
    without an explanation have none (EMPTY, NO_SENTENCE, NO_FEATURE, NO_OPINION).
    """
    cache: list[list[_Analysis]] = []
    report = _Progress(progress, len(texts))

    def corpus() -> Iterator[_Analysis]:
        room = _CACHED_SENTENCES
        for done, text in enumerate(texts, start=1):
            review = [_analyse(sentence) for sentence in split_sentences(text)]
            room -= len(review)
            if room >= 0:  # only a prefix is cached, so that review i is cache[i]
                cache.append(review)
            yield from review
            report(done)

    extractor = FeatureExtractor()._fit_analysed(corpus())
    results: list[Explanation | None] = []
    for i, text in enumerate(texts):
        review = cache[i] if i < len(cache) else [_analyse(s) for s in split_sentences(text) if _usable(s)]
        usable = [a for a in review if _usable(a.sentence)]
        results.append(extractor._extract_analysed(usable))
        if results[-1] is None and reasons is not None:
            reasons[_reason(text, usable, extractor)] += 1
        report(len(texts) + i + 1)
    if progress is not None:
        progress(len(texts))
    return results


def _reason(text: str, usable: list[_Analysis], extractor: FeatureExtractor) -> str:
    """Why a review has no explanation: nothing written, no sentence of a usable length, no feature the corpus
    supports, or features but no opinion word linked to one."""
    if not text.strip():
        return EMPTY
    if not usable:
        return NO_SENTENCE
    pairs = [pair for analysis in usable for pair in _pairs(analysis, extractor._compounds)]
    if not pairs:
        return NO_OPINION if any(analysis.spans for analysis in usable) else NO_FEATURE
    return NO_FEATURE  # pairs, but no feature the corpus supports (rare, or naming the item)


@dataclass
class _Progress:
    """Calls back with half the work units done, every 250 units, never with the final count twice."""

    callback: Callable[[int], None] | None
    total: int

    def __call__(self, units: int) -> None:
        if self.callback is not None and units % 250 == 0 and units // 2 < self.total:
            self.callback(units // 2)
