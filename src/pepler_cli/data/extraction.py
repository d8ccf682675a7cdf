"""Built-in review -> explanation extraction: (feature, opinion, sentence, sentiment) quadruples.

PEPLER's datasets were made with the Sentires toolkit, which pairs item features with opinion words and
keeps features that recur across the corpus. This module does the same job without a model download:

1. a Brill-style part-of-speech tagger whose lexicon and contextual rules are data files of the TextBlob
   package (read from the installed distribution, TextBlob itself is never imported);
2. opinion words: TextBlob's adjective polarities, corrected and extended by pepler's own lists
   (``lexicons/``), with negation flipping the sign;
3. a few syntactic patterns pairing a noun phrase with an opinion word ("the sound is crisp",
   "crisp sound", "I love the sound");
4. a corpus pass (``fit``) that keeps features seen often enough across the reviews (or bound to their
   opinion by syntax), joins frequent compounds ("hard drive"), and drops nouns that mostly name the
   reviewed item itself ("this laptop", "my guitar") or a brand (words people write capitalised).

Measured against SemEval-2014 aspect terms by ``benchmarks/extraction_semeval.py``.

Everything is deterministic: no randomness, no dependence on set or hash order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import NamedTuple

MIN_SENTENCE_WORDS = 4
MAX_SENTENCE_WORDS = 40
MAX_FEATURE_WORDS = 3


@dataclass(frozen=True)
class Explanation:
    feature: str  # lowercase feature phrase, e.g. "sound", "battery life"
    opinion: str  # the opinion word, e.g. "crisp"
    sentence: str  # the sentence from the review, as written (whitespace-normalised)
    sentiment: int  # +1 or -1


# --------------------------------------------------------------------------------------------------
# Sentences and tokens
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------------


class _Rule(NamedTuple):  # a tuple: the tagger unpacks millions of these
    order: int  # position in the rule file: Brill rules apply in order
    to_tag: str
    test: Callable[[list[str], list[str], int], bool]


@dataclass(frozen=True)
class _Resources:
    tags: dict[str, str]
    rules: dict[str, tuple[_Rule, ...]]  # keyed by the tag a rule changes
    adjectives: dict[str, float]  # opinion adjective -> polarity
    verbs: dict[str, float]  # opinion verb -> polarity
    subject_verbs: frozenset[str]  # opinion verbs said of their subject ("the battery died")
    nouns: dict[str, float]  # opinion noun -> polarity
    not_opinions: frozenset[str]  # words never taken as opinions, whatever their stem says
    non_features: frozenset[str]


def _textblob_file(name: str) -> str:
    # Located through the distribution's file list so that TextBlob (and NLTK) are never imported.
    try:
        path = Path(str(metadata.distribution("textblob").locate_file(f"textblob/en/{name}")))
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError("feature extraction needs the 'textblob' package: pip install textblob") from exc
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return resources.files("textblob").joinpath("en", name).read_text(encoding="utf-8")  # unusual installs


def _own_lines(name: str) -> list[str]:
    text = resources.files("pepler_cli.data").joinpath("lexicons", name).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _own_signed(name: str) -> dict[str, float]:
    return {parts[0]: float(parts[1]) for parts in (line.split() for line in _own_lines(name))}


def _own_subject_verbs() -> frozenset[str]:
    return frozenset(
        p[0] for p in (line.split() for line in _own_lines("opinion_verbs.txt")) if p[2:] == ["subject"]
    )


def _load_tags() -> dict[str, str]:
    tags: dict[str, str] = {}
    for line in _textblob_file("en-lexicon.txt").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(";;;"):
            tags[parts[0]] = parts[1]
    return tags


def _load_rules() -> dict[str, tuple[_Rule, ...]]:
    rules: dict[str, list[_Rule]] = defaultdict(list)
    lines = [line.split() for line in _textblob_file("en-context.txt").splitlines()]
    for index, parts in enumerate(p for p in lines if len(p) >= 4 and not p[0].startswith(";;;")):
        test = _compile_rule(parts[2], parts[3], parts[4] if len(parts) > 4 else "")
        if test is not None:
            rules[parts[0]].append(_Rule(index, parts[1], test))
    return {tag: tuple(found) for tag, found in rules.items()}


def _load_adjectives() -> dict[str, float]:
    senses: dict[str, list[float]] = defaultdict(list)
    root = ET.fromstring(_textblob_file("en-sentiment.xml"))
    for entry in root.iter("word"):
        if entry.get("pos") == "JJ":
            senses[entry.get("form", "")].append(float(entry.get("polarity", "0")))
    # Averaging over senses, as TextBlob does; weak averages are too ambiguous to call an opinion.
    polarity = {w: sum(p) / len(p) for w, p in senses.items() if abs(sum(p) / len(p)) >= 0.1}
    for word in _own_lines("not_opinions.txt"):
        polarity.pop(word, None)
    polarity.update({word: 1.0 for word in _own_lines("opinion_positive.txt")})
    polarity.update({word: -1.0 for word in _own_lines("opinion_negative.txt")})
    return polarity


@lru_cache(maxsize=1)
def _resources() -> _Resources:
    return _Resources(
        tags=_load_tags(),
        rules=_load_rules(),
        adjectives=_load_adjectives(),
        verbs=_own_signed("opinion_verbs.txt"),
        subject_verbs=_own_subject_verbs(),
        nouns=_own_signed("opinion_nouns.txt"),
        not_opinions=frozenset(_own_lines("not_opinions.txt")),
        non_features=frozenset(_own_lines("non_features.txt")),
    )


# --------------------------------------------------------------------------------------------------
# Part-of-speech tagging (lexicon lookup, suffix guesses, Brill contextual rules)
# --------------------------------------------------------------------------------------------------

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
_Test = Callable[[list[str], list[str], int], bool]
_FIXED_WORDS = _words("n't not is are was were am be been has have had do does did the a an")


def _compile_rule(kind: str, a: str, b: str) -> _Test | None:
    """A Brill contextual rule as a test on (words, tags, i) over sentinel-padded lists."""
    tests: dict[str, _Test] = {
        "PREVTAG": lambda w, t, i: t[i - 1] == a,
        "NEXTTAG": lambda w, t, i: t[i + 1] == a,
        "PREV1OR2TAG": lambda w, t, i: t[i - 1] == a or t[i - 2] == a,
        "NEXT1OR2TAG": lambda w, t, i: t[i + 1] == a or t[i + 2] == a,
        "PREV1OR2OR3TAG": lambda w, t, i: a in (t[i - 1], t[i - 2], t[i - 3]),
        "NEXT1OR2OR3TAG": lambda w, t, i: a in (t[i + 1], t[i + 2], t[i + 3]),
        "PREV2TAG": lambda w, t, i: t[i - 2] == a,
        "NEXT2TAG": lambda w, t, i: t[i + 2] == a,
        "SURROUNDTAG": lambda w, t, i: t[i - 1] == a and t[i + 1] == b,
        "PREVBIGRAM": lambda w, t, i: t[i - 2] == a and t[i - 1] == b,
        "NEXTBIGRAM": lambda w, t, i: t[i + 1] == a and t[i + 2] == b,
        "CURWD": lambda w, t, i: w[i] == a,
        "PREVWD": lambda w, t, i: w[i - 1] == a,
        "NEXTWD": lambda w, t, i: w[i + 1] == a,
        "PREV1OR2WD": lambda w, t, i: w[i - 1] == a or w[i - 2] == a,
        "NEXT1OR2WD": lambda w, t, i: w[i + 1] == a or w[i + 2] == a,
        "WDPREVTAG": lambda w, t, i: w[i] == b and t[i - 1] == a,
        "WDNEXTTAG": lambda w, t, i: w[i] == a and t[i + 1] == b,
        "RBIGRAM": lambda w, t, i: w[i] == a and w[i + 1] == b,
        "LBIGRAM": lambda w, t, i: w[i] == b and w[i - 1] == a,
        "WDAND2AFT": lambda w, t, i: w[i] == a and w[i + 2] == b,
        "WDAND2TAGAFT": lambda w, t, i: w[i] == a and t[i + 2] == b,
        "WDAND2TAGBFR": lambda w, t, i: w[i] == b and t[i - 2] == a,
    }
    return tests.get(kind)


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


# --------------------------------------------------------------------------------------------------
# Noun phrases (feature candidates) and opinion words
# --------------------------------------------------------------------------------------------------

_NOUN_TAGS = frozenset(("NN", "NNS"))
# Words the lexicon files under a closed class are never features, even when a rule retags them.
_CLOSED_TAGS = _words("IN DT PDT PRP PRP$ CC TO MD WDT WP WP$ WRB EX RP")
_MODIFIER_TAGS = frozenset(("JJ", "NNP", "NNPS", "VBN", "VBG", "NN"))
_FEATURE_WORD = re.compile(r"^[a-z][a-z0-9'-]*$")


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
    kind: str  # "adj", "adv", "verb", "subject-verb" or "noun": decides which patterns may link it


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
        spans.extend(_trimmed_span(words, i, j, res))
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
            if modifier is None or f"{modifier} {span.feature}" not in compounds:
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


# --------------------------------------------------------------------------------------------------
# Linking a noun phrase to an opinion word
# --------------------------------------------------------------------------------------------------

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
    if op.kind == "adj":
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
    for op in _opinions(words, tags, taken, res):
        for span in spans:
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


def sentence_pairs(sentence: str, compounds: frozenset[str] = frozenset()) -> list[_Pair]:
    """Every (feature, opinion) pair the patterns find in one sentence (no corpus filter)."""
    return _pairs(_analyse(sentence), compounds)


# --------------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------------

_DEMONSTRATIVES = frozenset(("this", "these", "my"))


@dataclass
class _CorpusCounts:
    features: Counter[str] = field(default_factory=Counter)  # sentences mentioning a noun phrase
    owned: Counter[str] = field(default_factory=Counter)  # ... right after "this/these/my"
    compounds: Counter[str] = field(default_factory=Counter)  # ... right after a possible modifier
    words: Counter[str] = field(default_factory=Counter)  # words after the first of a sentence
    capitalised: Counter[str] = field(default_factory=Counter)  # ... written with a capital there

    def add(self, a: _Analysis, res: _Resources) -> None:
        spans = a.spans
        self.words.update(w.lower() for w in a.words[1:])
        self.capitalised.update(w.lower() for w in a.words[1:] if w[:1].isupper() and not w.isupper())
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
    """

    min_count: int = 2
    item_share: float = 0.25
    compound_share: float = 0.5
    counts: Counter[str] = field(default_factory=Counter, init=False, repr=False)  # sentences per feature
    fitted: bool = field(default=False, init=False)
    _items: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _compounds: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _names: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def fit(self, texts: Iterable[str]) -> FeatureExtractor:
        return self._fit_analysed(_analyse(s) for text in texts for s in split_sentences(text))

    def _fit_analysed(self, analyses: Iterable[_Analysis]) -> FeatureExtractor:
        res = _resources()
        corpus = _CorpusCounts()
        for analysis in analyses:
            corpus.add(analysis, res)
        self._compounds = frozenset(
            c
            for c, n in corpus.compounds.items()
            if n >= self.min_count and n >= self.compound_share * corpus.features[c.split(" ", 1)[1]]
        )
        self.counts = corpus.features + Counter({c: corpus.compounds[c] for c in self._compounds})
        # Words people capitalise inside sentences are names (brands, models, places), not features.
        self._names = frozenset(w for w, n in corpus.capitalised.items() if n >= 0.5 * corpus.words[w])
        self._items = frozenset(
            f
            for f, n in corpus.owned.items()
            if n >= self.min_count and n >= self.item_share * corpus.features[f]
        )
        self.fitted = True
        return self

    def _accept(self, pair: _Pair) -> _Pair | None:
        """The pair with its feature as the corpus supports it, or None."""
        if not self.fitted:
            return pair
        for feature in dict.fromkeys((pair.feature, pair.head)):
            # Syntax vouches for a rare feature ("the broth is bland"); mere proximity does not.
            frequent = self.counts[feature] >= self.min_count or pair.strength >= _ATTRIBUTIVE
            if frequent and not self._is_item(feature):
                return pair if feature == pair.feature else replace(pair, feature=feature)
        return None

    def _is_item(self, feature: str) -> bool:
        # "laptops" names the item as much as "laptop" does; a brand names it too.
        head = feature.rsplit(" ", 1)[-1]
        return (
            feature in self._items
            or (feature.endswith("s") and feature[:-1] in self._items)
            or head in self._names
        )

    def _best_pair(self, analysis: _Analysis) -> _Pair | None:
        accepted = [p for p in map(self._accept, _pairs(analysis, self._compounds)) if p is not None]
        if not accepted:
            return None
        # Syntax first, then a clear opinion ("small, compact and sturdy": sturdy), then proximity.
        return min(
            accepted, key=lambda p: (-p.strength, not p.strong, p.distance, p.position, p.feature, p.opinion)
        )

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


def extract_explanations(
    texts: Sequence[str], progress: Callable[[int], None] | None = None
) -> list[Explanation | None]:
    """Fit on ``texts`` and extract one explanation per text.

    ``progress(n)`` is called every few hundred texts with ``n`` rising to ``len(texts)``: the corpus pass
    counts for the first half, the extraction for the second.
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
        results.append(extractor._extract_analysed(a for a in review if _usable(a.sentence)))
        report(len(texts) + i + 1)
    if progress is not None:
        progress(len(texts))
    return results


@dataclass
class _Progress:
    """Calls back with half the work units done, every 250 units, never with the final count twice."""

    callback: Callable[[int], None] | None
    total: int

    def __call__(self, units: int) -> None:
        if self.callback is not None and units % 250 == 0 and units // 2 < self.total:
            self.callback(units // 2)
