"""The lexicons, loaded once and cached: TextBlob's bundled data files and pepler's own word lists.

TextBlob's part-of-speech lexicon, Brill contextual rules and adjective polarities are read from the
installed distribution without importing TextBlob (or NLTK); pepler's own lists (opinion words, words that
are never opinions or features) are the ``lexicons/*.txt`` files of ``pepler_cli.data``. The rule file is
compiled into tests here, as it loads, so that the tagger only applies them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import NamedTuple


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


# Compiled while the rule file loads (below), so it lives with the loading rather than the tagger.
_Test = Callable[[list[str], list[str], int], bool]


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
