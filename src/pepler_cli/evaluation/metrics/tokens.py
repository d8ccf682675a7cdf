"""The token normalisation every metric shares, so reference and generated text are cut the same way.

It reproduces the paper's post-processing: clitics split off, punctuation spaced out, runs of the same
punctuation collapsed, then a split on any whitespace. Case is kept and only the ASCII apostrophe counts.
"""

from __future__ import annotations

import re

_CLITICS = re.compile(r"'(?:s|m|ve|re|d|ll)|n't")
# A run of one of , . ! ? : ; is one token ("..." -> "."; "::" -> ","; "?!" stays two), as the authors'
# re.sub(':+', ' , ', ...) and its siblings make it; ( and ) are spaced out one by one.
_PUNCTUATION = re.compile(r"([,.!?:;])\1*|[()]")
# ':' counts as a comma and ';' as a full stop, as in the paper.
_SPACED = {"(": " ( ", ")": " ) ", ",": " , ", ":": " , ", ";": " . ", ".": " . ", "!": " ! ", "?": " ? "}


def normalize(text: str) -> list[str]:
    """Split ``text`` into the paper's tokens ("don't stop..." -> ["do", "n't", "stop", "."])."""
    # Both passes only insert spaces and no clitic contains punctuation, so their order does not matter.
    text = _CLITICS.sub(lambda match: " " + match.group(), text)
    text = _PUNCTUATION.sub(lambda match: _SPACED[match.group()[0]], text)
    # str.split() with no argument separates on any Unicode whitespace and drops empty pieces,
    # which also covers collapsing runs of spaces and stripping the ends.
    return text.split()


def normalize_text(text: str) -> str:
    """The normalised text: tokens joined by single spaces, "" when there are none."""
    return " ".join(normalize(text))
