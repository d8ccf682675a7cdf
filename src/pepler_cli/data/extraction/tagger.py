"""Part-of-speech tagging: lexicon lookup, suffix guesses for unknown words, Brill contextual rules.

``pos_tag`` gives Penn Treebank tags, which decide what can be a feature (nouns) and an opinion (adjectives,
adverbs, verbs); ``_at`` reads a neighbouring word or tag with Brill's edge marker past either end.
"""

from __future__ import annotations

from pepler_cli.data.extraction.resources import _resources
from pepler_cli.data.extraction.sentences import _words

_ADJECTIVE_SUFFIXES = ("able", "ible", "ful", "ous", "ive", "less", "ic", "ish", "ical")


def _guess_tag(word: str, first: bool) -> str:
    if any(ch.isdigit() for ch in word):
        return "CD"
    if not word[0].isalnum():
        return word if word in ".,:;" else "SYM"
    if word[0].isupper() and not first and not word.isupper():
        return "NNP"
    lower = word.lower()
    if lower.endswith("ing"):
        return "VBG"
    if lower.endswith("ed"):
        return "VBN"
    if lower.endswith("ly"):
        return "RB"
    if "-" in lower or lower.endswith(_ADJECTIVE_SUFFIXES):
        return "JJ"
    if lower.endswith("s") and not lower.endswith("ss"):
        return "NNS"
    return "NN"


def _lookup(word: str, first: bool, tags: dict[str, str]) -> str:
    lower = word.lower()
    # Reviews shout ("GREAT SOUND"): read shouted and sentence-initial words in lower case. A capital
    # inside a sentence mostly marks a brand or model ("Dell", "Windows"), so those keep the lexicon's tag.
    if first or (word.isupper() and len(word) > 1):
        found = tags.get(lower) or tags.get(word)
    else:
        found = tags.get(word) or tags.get(lower)
    return found if found else _guess_tag(word, first)


def _at(items: list[str], j: int) -> str:
    return items[j] if 0 <= j < len(items) else _EDGE


_EDGE = "STAART"  # Brill's name for "outside the sentence"
_PAD = 3  # sentinel slots on either side, so that compiled rules never check bounds
_FIXED_WORDS = _words("n't not is are was were am be been has have had do does did the a an")


def pos_tag(words: list[str]) -> list[str]:
    """Penn Treebank tags for tokens from :func:`tokenize`."""
    res = _resources()
    edge = [_EDGE] * _PAD
    padded = edge + words + edge
    tags = edge + [_lookup(w, i == 0, res.tags) for i, w in enumerate(words)] + edge
    # Left to right, each token runs through the rules for its current tag in file order; later rules
    # see the tags already corrected to their left, as in Brill's tagger.
    for i in range(_PAD, _PAD + len(words)):
        if padded[i].lower() in _FIXED_WORDS:
            continue  # the rules sometimes misfire on these ("these/DT are/VBP" -> are/NN)
        last = -1
        rules = res.rules.get(tags[i])
        while rules:
            for order, to_tag, test in rules:
                if order > last and test(padded, tags, i):
                    tags[i], last = to_tag, order
                    rules = res.rules.get(to_tag)
                    break
            else:
                break
    return tags[_PAD:-_PAD]
