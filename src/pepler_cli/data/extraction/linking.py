"""Linking a noun phrase to an opinion word: the syntactic patterns and their strengths.

Copular ("the sound is crisp"), attributive ("crisp sound") and argument ("I love the sound") patterns
bind a feature to its opinion more strongly than mere proximity does. ``sentence_pairs`` lists every pair
found in one sentence; ``_analyse`` tags a sentence once for both the corpus pass and the extraction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pepler_cli.data.extraction.phrases import (
    _NEGATIONS,
    _PROXIMITY_BREAKS,
    _noun_spans,
    _Opinion,
    _opinions,
    _sentiment,
    _Span,
    _with_compounds,
)
from pepler_cli.data.extraction.resources import _resources
from pepler_cli.data.extraction.sentences import _words, tokenize
from pepler_cli.data.extraction.tagger import pos_tag

_LINKING_VERBS = _words(
    "is are was were be been being 's 're am seem seems seemed look looks looked sound sounds "
    "sounded feel feels felt taste tastes tasted smell smells remain remains remained stay stays "
    "stayed become becomes became get gets got appear appears appeared work works worked"
)
_PREPOSITIONS = frozenset(("of", "on", "in", "for", "with", "at", "from"))
_DETERMINER_TAGS = frozenset(("DT", "PRP$", "POS", "CD", "JJ", "JJR", "JJS", "PDT"))

# Pattern strengths: a feature bound to its opinion by syntax beats one that is merely near it.
_COPULAR, _ATTRIBUTIVE, _ARGUMENT, _NEARBY = 4, 3, 2, 1
_NEARBY_WORDS = 10
_NEARBY_KINDS = frozenset(("adj", "noun", "verb", "subject-verb", "adv"))


@dataclass(frozen=True)
class _Sentence:
    words: list[str]
    tags: list[str]
    lowers: list[str]
    span_ends: dict[int, _Span]  # span by its end index
    span_starts: dict[int, _Span]  # span by its start index


def _gap_ok(s: _Sentence, start: int, end: int, allowed: Callable[[str, str], bool]) -> bool:
    return all(allowed(s.lowers[k], s.tags[k]) for k in range(start, end))


def _predicate_gap(word: str, tag: str) -> bool:
    return (
        tag.startswith(("VB", "RB", "MD"))
        or tag in ("TO", "WDT")  # "seems to be", "the screen, which is bright"
        or word in _NEGATIONS
        or word in ("so", "very", "too")
    )


def _modifier_gap(word: str, tag: str) -> bool:
    return tag.startswith(("JJ", "RB")) or word in (",", "and", "-") or tag in ("VBN", "VBG")


def _object_gap(word: str, tag: str) -> bool:
    return tag in _DETERMINER_TAGS or tag.startswith("RB") or word in ("with", "by")


def _complement_gap(word: str, tag: str) -> bool:
    return tag in _DETERMINER_TAGS or word in ("with", "by", "about")


def _noun_object_gap(word: str, tag: str) -> bool:
    return tag in _DETERMINER_TAGS or word in _PREPOSITIONS or word in _LINKING_VERBS


def _skip_determiners(s: _Sentence, k: int, step: int) -> int:
    while 0 <= k < len(s.tags) and s.tags[k] in _DETERMINER_TAGS:
        k += step
    return k


def _subject_end(s: _Sentence, span: _Span) -> int:
    """Where the predicate may start: after the span, or after one prepositional phrase attached to it
    ("the graphics on this computer are stellar": the graphics are)."""
    k = span.end
    if k < len(s.words) and s.lowers[k] in _PREPOSITIONS:
        inner = s.span_starts.get(_skip_determiners(s, k + 1, 1))
        if inner is not None:
            return inner.end
    return k


def _is_pp_object(s: _Sentence, span: _Span) -> bool:
    """Whether the span only completes another noun phrase ("the graphics on this computer")."""
    k = _skip_determiners(s, span.start - 1, -1)
    return k >= 1 and s.lowers[k] in _PREPOSITIONS and k - 1 in s.span_ends


def _predicate_link(s: _Sentence, span: _Span, op: _Opinion) -> bool:
    """Span as the subject of a predicate ending in the opinion: "the sound is (not) very crisp"."""
    if _is_pp_object(s, span):
        return False
    start = _subject_end(s, span)
    if not start <= op.at or op.at - start > 7 or not _gap_ok(s, start, op.at, _predicate_gap):
        return False
    gap = range(start, op.at)
    if op.kind in ("adj", "plain"):
        return any(s.lowers[k] in _LINKING_VERBS for k in gap)
    if op.kind == "adv":
        return any(s.tags[k].startswith("VB") for k in gap)
    return op.kind == "subject-verb"  # "the battery died", "the touchpad didn't work"


def _pronoun_link(s: _Sentence, span: _Span, op: _Opinion) -> bool:
    """The nearest noun phrase before "it/they is ADJ" ("I use the trackpad because it is so nice")."""
    pronoun = next(
        (k for k in range(op.at - 1, max(op.at - 6, span.end - 1), -1) if s.lowers[k] in ("it", "they")), None
    )
    if pronoun is None or any(sp.start > span.end and sp.start < pronoun for sp in s.span_starts.values()):
        return False
    subject = _Span(pronoun, pronoun + 1, s.lowers[pronoun])
    return _predicate_link(s, subject, op)


def _link(s: _Sentence, span: _Span, op: _Opinion) -> int:
    """Strength of the link between a noun span and an opinion word (0: none)."""
    if op.kind == "plain":
        if span.end <= op.at:
            return _NEARBY if _predicate_link(s, span, op) else 0
        return _NEARBY if op.at + 1 == span.start else 0  # "a long battery life"
    if span.end <= op.at and op.kind != "noun" and _predicate_link(s, span, op):
        return _COPULAR
    if span.start > op.at:
        gap = (op.at + 1, span.start)
        if op.kind == "adj" and span.start - op.at <= 4 and _gap_ok(s, *gap, _modifier_gap):
            return _ATTRIBUTIVE
        if (
            op.kind == "adj"
            and s.lowers[op.at + 1] in ("with", "by", "about")
            and _gap_ok(s, *gap, _complement_gap)
        ):
            return _ARGUMENT  # "happy with the keyboard"
        if op.kind == "verb" and span.start - op.at <= 4 and _gap_ok(s, *gap, _object_gap):
            return _ARGUMENT
        if op.kind == "noun" and span.start - op.at <= 4 and _gap_ok(s, *gap, _noun_object_gap):
            return _ARGUMENT  # "problems with the keyboard", "the only downfall is the volume control"
    if op.kind == "noun" and span.end == op.at:
        return _ARGUMENT  # "keyboard problems"
    if span.end <= op.at and op.kind != "noun" and _pronoun_link(s, span, op):
        return _NEARBY
    if op.kind not in _NEARBY_KINDS:
        return 0  # an adverb or verb near a noun says nothing about it unless syntax links them
    lo, hi = (op.at, span.start) if span.start > op.at else (span.end, op.at)
    if hi - lo < _NEARBY_WORDS and not any(s.lowers[k] in _PROXIMITY_BREAKS for k in range(lo, hi)):
        return _NEARBY
    return 0


@dataclass(frozen=True)
class _Pair:
    feature: str
    head: str  # last word of the feature, used to back off from rare compounds
    opinion: str
    sentiment: int
    strength: int
    strong: bool  # |polarity| >= 0.5: a clear judgement rather than a mild description
    distance: int
    position: int


@dataclass(frozen=True)
class _Analysis:
    """One tagged sentence; computed once and shared by the corpus pass and the extraction."""

    sentence: str
    words: list[str]
    tags: list[str]
    spans: list[_Span]


def _analyse(sentence: str) -> _Analysis:
    words = tokenize(sentence)
    tags = pos_tag(words)
    return _Analysis(sentence, words, tags, _noun_spans(words, tags, _resources()))


def _pairs(analysis: _Analysis, compounds: frozenset[str]) -> list[_Pair]:
    res = _resources()
    words, tags = analysis.words, analysis.tags
    spans = _with_compounds(words, tags, analysis.spans, compounds, res)
    taken = {k for span in spans for k in range(span.start, span.end)}
    lowers = [w.lower() for w in words]
    s = _Sentence(words, tags, lowers, {sp.end - 1: sp for sp in spans}, {sp.start: sp for sp in spans})
    pairs: list[_Pair] = []
    unreal = _unreal(lowers)
    for op in _opinions(words, tags, taken, res):
        if op.at in unreal:
            continue
        for span in spans:
            if span.start in unreal:
                continue
            strength = _link(s, span, op)
            if strength:
                distance = span.start - op.at if span.start > op.at else op.at - span.end + 1
                head = span.feature.rsplit(" ", 1)[-1]
                sentiment = _sentiment(words, op.at, op.polarity)
                strong = abs(op.polarity) >= 0.5
                pairs.append(
                    _Pair(span.feature, head, op.word, sentiment, strength, strong, distance, span.start)
                )
    return pairs


_CONDITIONALS = frozenset(("if", "unless", "whether"))
_CONDITION_ENDS = frozenset((*".,;:!?()", "then"))


def _unreal(lowers: list[str]) -> set[int]:
    """Words that judge nothing real: a question ("is the battery good?") or a condition ("if the webcam
    breaks, ..."), from its "if" to the next clause break."""
    if lowers and lowers[-1] == "?":
        return set(range(len(lowers)))
    unreal: set[int] = set()
    inside = False
    for k, word in enumerate(lowers):
        if word in _CONDITIONALS:
            inside = True
        elif word in _CONDITION_ENDS:
            inside = False
        if inside:
            unreal.add(k)
    return unreal


def sentence_pairs(sentence: str, compounds: frozenset[str] = frozenset()) -> list[_Pair]:
    """Every (feature, opinion) pair the patterns find in one sentence (no corpus filter)."""
    return _pairs(_analyse(sentence), compounds)
