"""Review text into sentences and sentences into tokens, the units every later step works on.

Sentence splitting copes with how people type reviews (abbreviations, initials, "affordable.I did"); tokens
split off clitics ("do", "n't") the way TextBlob's Brill lexicon expects them. ``_words`` (a frozenset from
a space-separated string) lives here too: the tagger, phrase and linking modules build word lists with it.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ABBREVIATIONS = _words("mr mrs ms dr st vs etc eg ie e.g i.e approx inc ltd co jr sr no fig vol ca")
# A sentence ends at . ! ? (runs of them) followed by space, or glued to a capitalised word
# ("affordable.I did"), which people typing reviews do a lot. Newlines always end a sentence.
_BOUNDARY = re.compile(r"([.!?]+[\"')\]]*)(\s+|(?=[A-Z](?:[a-z]|\s|')))|\s*\n\s*")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def split_sentences(text: str) -> list[str]:
    """Split review text into whitespace-normalised sentences."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1) and _is_abbreviation(text[start : match.start()], match.group(1)):
            continue
        if match.group(1) and not match.group(2) and not text[match.start() - 1 : match.start()].islower():
            continue  # glued only after a lower-case word ("affordable.I"), never inside "U.S" or "3.5"
        end = match.end(1) if match.group(1) else match.start()
        _append_sentence(sentences, text[start:end])
        start = match.end()
    _append_sentence(sentences, text[start:])
    return sentences


def _is_abbreviation(before: str, punctuation: str) -> bool:
    # "Mr. Smith", "e.g. this", "J. Smith": a single period after a known abbreviation or an initial.
    if punctuation != ".":
        return False
    word = _WORD_BEFORE.search(before)
    if word is None:
        return False
    token = word.group(1).lower().rstrip(".")
    initialism = "." in token  # "U.S.A.", "e.g."
    return initialism or token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha() and token != "i")


def _append_sentence(sentences: list[str], chunk: str) -> None:
    sentence = " ".join(chunk.split())
    if any(ch.isalnum() for ch in sentence):
        sentences.append(sentence)


_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-'.&][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")
_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")


def tokenize(sentence: str) -> list[str]:
    """Words and punctuation; clitics split off as the Brill lexicon expects ("do", "n't")."""
    words: list[str] = []
    for token in _TOKEN.findall(sentence.replace("\u2019", "'")):
        words.extend(_split_clitic(token))
    return words


def _split_clitic(token: str) -> list[str]:
    if "'" not in token:
        return [token]
    lower = token.lower()
    if lower in ("can't", "won't"):
        return [token[:2], token[2:]]
    for clitic in _CLITICS:
        if lower.endswith(clitic) and len(token) > len(clitic):
            return [token[: -len(clitic)], token[-len(clitic) :]]
    return [token]
