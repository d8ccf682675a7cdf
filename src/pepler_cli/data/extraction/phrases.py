"""Noun phrases (feature candidates), opinion words with their polarity, and negation (sentiment).

A feature is a run of common nouns trimmed of words that never name a feature, optionally grown into a
frequent compound ("hard drive"); an opinion is an adjective, adverb, verb or noun with a polarity in the
lexicons, and its sentiment flips when a negation comes shortly before it in the same clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pepler_cli.data.extraction.resources import _Resources
from pepler_cli.data.extraction.sentences import _words
from pepler_cli.data.extraction.tagger import _at

MAX_FEATURE_WORDS = 3

_NOUN_TAGS = frozenset(("NN", "NNS"))
# Words the lexicon files under a closed class are never features, even when a rule retags them.
_CLOSED_TAGS = _words("IN DT PDT PRP PRP$ CC TO MD WDT WP WP$ WRB EX RP")
_MODIFIER_TAGS = frozenset(("JJ", "NNP", "NNPS", "VBN", "VBG", "NN"))
_INTENSIFIERS = _words("very so too quite pretty really extremely reasonably fairly rather incredibly super")
_AFTER_VERB_TAGS = ("JJ", "RB", "VBG", "RP", "DT", "PRP")
_FEATURE_WORD = re.compile(r"^[a-z][a-z0-9'-]*$")
_PLAIN = 0.01  # the polarity of an adjective no lexicon judges: positive unless negated, never strong


@dataclass(frozen=True)
class _Span:
    start: int
    end: int  # exclusive
    feature: str


@dataclass(frozen=True)
class _Opinion:
    at: int
    word: str
    polarity: float
    # "adj", "plain" (an adjective of no polarity), "adv", "verb", "subject-verb" or "noun": decides which
    # patterns may link it
    kind: str


def _is_feature_noun(word: str, tag: str, res: _Resources) -> bool:
    lower = word.lower()
    return (
        tag in _NOUN_TAGS
        and len(lower) > 1
        and _FEATURE_WORD.match(lower) is not None
        and res.tags.get(lower) not in _CLOSED_TAGS
        and lower not in res.adjectives
        and lower not in res.verbs
        and lower not in res.nouns
    )


def _is_non_feature(word: str, res: _Resources) -> bool:
    # Plurals of the listed words ("reasons", "cities") are just as empty.
    if word in res.non_features:
        return True
    if word.endswith("ies"):
        return word[:-3] + "y" in res.non_features
    return word.endswith("s") and word[:-1] in res.non_features


def _noun_spans(words: list[str], tags: list[str], res: _Resources) -> list[_Span]:
    """Maximal runs of common nouns, trimmed to the words after any non-feature noun."""
    spans: list[_Span] = []
    i = 0
    while i < len(words):
        if not _is_feature_noun(words[i], tags[i], res):
            i += 1
            continue
        j = i
        while j < len(words) and _is_feature_noun(words[j], tags[j], res):
            j += 1
        # "very light", "so fun": a lone "noun" graded by an intensifier is an adjective the tagger missed.
        graded = j == i + 1 and _at(words, i - 1).lower() in _INTENSIFIERS
        # "the screen quit working", "the controller go bad": a word the lexicon knows as a verb, followed by
        # what follows a verb, is the predicate, not the end of the noun phrase ("the guitar strap is" is one).
        end = j
        if (
            end - i > 1
            and res.tags.get(words[end - 1].lower(), "").startswith("VB")
            and _at(tags, end).startswith(_AFTER_VERB_TAGS)
        ):
            end -= 1
        if not graded:
            spans.extend(_trimmed_span(words, i, end, res))
        i = j
    return spans


def _trimmed_span(words: list[str], start: int, end: int, res: _Resources) -> list[_Span]:
    lowers = [w.lower() for w in words[start:end]]
    if _is_non_feature(lowers[-1], res):
        return []
    # "amazon price" -> "price": drop everything up to the last non-feature word, then cap the length.
    stops = [k for k, w in enumerate(lowers) if _is_non_feature(w, res)]
    first = max(stops[-1] + 1 if stops else 0, len(lowers) - MAX_FEATURE_WORDS)
    return [_Span(start + first, end, " ".join(lowers[first:]))]


def _modifier(words: list[str], tags: list[str], span: _Span, res: _Resources) -> str | None:
    """The word just before a span that could make a compound with it ("hard drive", "dim sum")."""
    k = span.start - 1
    if k < 0 or tags[k] not in _MODIFIER_TAGS:
        return None
    lower = words[k].lower()
    if (
        _FEATURE_WORD.match(lower) is None
        or res.tags.get(lower) in _CLOSED_TAGS
        or _is_non_feature(lower, res)
    ):
        return None
    return lower


def _with_compounds(
    words: list[str], tags: list[str], spans: list[_Span], compounds: frozenset[str], res: _Resources
) -> list[_Span]:
    grown: list[_Span] = []
    for span in spans:
        while len(span.feature.split()) < MAX_FEATURE_WORDS:
            modifier = _modifier(words, tags, span, res)
            # "hard drive light" holds the compound "hard drive" even when the corpus never saw it whole.
            first = span.feature.split(" ", 1)[0]
            if modifier is None or not {f"{modifier} {span.feature}", f"{modifier} {first}"} & compounds:
                break
            span = _Span(span.start - 1, span.end, f"{modifier} {span.feature}")
        grown.append(span)
    return grown


def _adjective_polarity(lower: str, tag: str, res: _Resources) -> float:
    if lower in res.adjectives:
        return res.adjectives[lower]
    if tag.startswith(("JJ", "RBR", "RBS")) and lower.endswith(("er", "est")):
        # "faster", "simplest", "bigger", "easier": the base form's polarity.
        base = lower[:-2] if lower.endswith("er") else lower[:-3]
        for stem in (base, base + "e", base[:-1] + "y" if base.endswith("i") else base, base[:-1]):
            if stem in res.adjectives:
                return res.adjectives[stem]
    return 0.0


def _adverb_polarity(lower: str, next_tag: str, res: _Resources) -> float:
    # "works well", "runs smoothly": an adverb judges the verb's subject, unless it only grades the next
    # adjective ("incredibly slow").
    if next_tag.startswith(("JJ", "RB")):
        return 0.0
    if lower == "well":
        return 1.0
    if not lower.endswith("ly") or lower in res.not_opinions:
        return 0.0
    for stem in (lower[:-2], lower[:-3] + "y", lower[:-1] + "e"):
        if stem in res.adjectives:
            return res.adjectives[stem]
    return 0.0


def _opinions(words: list[str], tags: list[str], taken: set[int], res: _Resources) -> list[_Opinion]:
    found: list[_Opinion] = []
    for at, (word, tag) in enumerate(zip(words, tags)):
        if at in taken:
            continue
        lower = word.lower()
        if tag.startswith("VB") and lower in res.verbs:
            kind = "subject-verb" if lower in res.subject_verbs else "verb"
            found.append(_Opinion(at, lower, res.verbs[lower], kind))
        elif tag.startswith("NN") and lower in res.nouns:
            found.append(_Opinion(at, lower, res.nouns[lower], "noun"))
        elif tag in ("RB", "RBS") and lower not in res.adjectives:
            polarity = _adverb_polarity(lower, _at(tags, at + 1), res)
            if polarity and _at(words, at - 1).lower() != "as" and _at(words, at + 1).lower() != "as":
                found.append(_Opinion(at, lower, polarity, "adv"))
        elif not tag.startswith("NN") and tag not in _CLOSED_TAGS:
            polarity = _adjective_polarity(lower, tag, res)
            if tag.startswith("JJ") and _at(words, at - 1).lower() == "too":
                polarity = -abs(polarity or 1.0)  # "too short", "too bright": excess is a complaint
            if polarity:
                found.append(_Opinion(at, lower, polarity, "adj"))
            elif tag.startswith("JJ") and _FEATURE_WORD.match(lower) and lower not in res.not_opinions:
                # "the memory is upgradable", "the pricing is competitive": an adjective without a polarity
                # still describes its subject; only the copular pattern links it, more weakly than any other.
                found.append(_Opinion(at, lower, _PLAIN, "plain"))
    # "works great", "worked perfectly": the verb yields to the opinion word right after it.
    after = {op.at for op in found}
    return [op for op in found if not (op.kind.endswith("verb") and op.at + 1 in after)]


_NEGATIONS = _words(
    "not n't no never hardly barely nothing neither nor without dont doesnt didnt isnt wasnt arent "
    "werent cant wont couldnt wouldnt shouldnt aint stopped quit"
)
_CLAUSE_BREAKS = frozenset((*'.,;:!?()"', "but", "although", "though", "while", "whereas", "because"))
# Commas mostly join a list about the same thing ("sturdy cord and plugs, inexpensive, good value"), so
# they bound negation but not proximity.
_PROXIMITY_BREAKS = _CLAUSE_BREAKS - {","}


def _sentiment(words: list[str], at: int, polarity: float) -> int:
    # Negation up to three words back within the clause flips the opinion: "is not very good".
    sign = 1 if polarity > 0 else -1
    for j in range(at - 1, max(at - 4, -1), -1):
        lower = words[j].lower()
        if lower in _CLAUSE_BREAKS:
            break
        if lower in _NEGATIONS:
            return -sign
    return sign
