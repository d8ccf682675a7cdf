"""Explanations that keep their feature within the token limit.

An extracted sentence is cut to the first N tokens at preparation; when its feature comes later, the stored
explanation no longer mentions it, which teaches a model the wrong thing and corrupts FMR. For such a sentence
(only such: one whose first N tokens hold its feature is kept as it is) the part that holds the feature and its
opinion is kept instead: the first clause (split at ; : — – and before "but") that fits and holds both, else the
widest window of words around them that fits. A sentence where even the words from the feature to its opinion
do not fit is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Clause boundaries: ; : dashes, and the point before "but" (", but" and " but").
_CLAUSE = re.compile(r"\s*[;:\u2014\u2013]\s*|\s+-\s+|,?\s+(?=\bbut\b)", re.IGNORECASE)

TokenCount = Callable[[str], int]
Cut = Callable[[str], str]  # a text cut to its first ``limit`` tokens


def fit_explanation(
    sentence: str, feature: str, opinion: str, limit: int, count: TokenCount, cut: Cut
) -> str | None:
    """``sentence`` if its first ``limit`` tokens hold ``feature``, else its best part that fits and still holds
    ``feature`` (and, in a clause, ``opinion``); None when no such part exists."""
    if count(sentence) <= limit or _holds(cut(sentence), feature):
        return sentence
    for clause in _CLAUSE.split(sentence):
        if _holds(clause, feature) and _holds(clause, opinion) and count(clause) <= limit:
            return clause.strip()
    return _window(sentence.split(), feature, opinion, limit, count)


def _holds(text: str, phrase: str) -> bool:
    return phrase.lower() in text.lower()


def _window(words: list[str], feature: str, opinion: str, limit: int, count: TokenCount) -> str | None:
    """The widest run of words around the feature (and its opinion, when near) that fits ``limit`` tokens."""
    lowered = [word.lower() for word in words]
    size = len(feature.split())
    # Where the whole phrase starts: "guitar players" is not at the "guitar" of "a guitar repair shop".
    at = next((i for i in range(len(words)) if _holds(" ".join(lowered[i : i + size]), feature)), None)
    if at is None:
        return None
    end = at + size
    near = [i for i, word in enumerate(lowered) if opinion.lower() in word]
    if near:
        closest = min(near, key=lambda i: abs(i - at))
        start, end = min(at, closest), max(end, closest + 1)
    else:
        start = at
    if count(" ".join(words[start:end])) > limit:
        return None
    # Grow to the right first (a sentence's feature is usually explained after it), then to the left.
    while end < len(words) and count(" ".join(words[start : end + 1])) <= limit:
        end += 1
    while start > 0 and count(" ".join(words[start - 1 : end])) <= limit:
        start -= 1
    window = " ".join(words[start:end])
    return window if _holds(window, feature) else None
