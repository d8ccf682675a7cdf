"""Built-in review -> explanation extraction: (feature, opinion, sentence, sentiment) quadruples.

PEPLER's datasets were made with the Sentires toolkit, which pairs item features with opinion words and
keeps features that recur across the corpus. This package does the same job without a model download:

1. a Brill-style part-of-speech tagger whose lexicon and contextual rules are data files of the TextBlob
   package (read from the installed distribution, TextBlob itself is never imported);
2. opinion words: TextBlob's adjective polarities, corrected and extended by pepler's own lists
   (``lexicons/``), with negation flipping the sign;
3. a few syntactic patterns pairing a noun phrase with an opinion word ("the sound is crisp",
   "crisp sound", "I love the sound");
4. a corpus pass (``fit``) that keeps features seen often enough across the reviews (or bound to their
   opinion by syntax), joins frequent compounds ("hard drive"), and drops nouns that mostly name the
   reviewed item itself ("this laptop", "my guitar") or a brand (words people write capitalised).

Modules, each importing only those before it: ``sentences`` (splitting, tokens), ``resources`` (the
lexicons), ``tagger`` (1), ``phrases`` (noun phrases, 2), ``linking`` (3), ``extractor`` (4).

Measured against SemEval-2014 aspect terms by ``benchmarks/extraction_semeval.py``.

Everything is deterministic: no randomness, no dependence on set or hash order.
"""

from __future__ import annotations

from pepler_cli.data.extraction.extractor import (
    EMPTY,
    MAX_SENTENCE_WORDS,
    MIN_SENTENCE_WORDS,
    NO_FEATURE,
    NO_OPINION,
    NO_SENTENCE,
    Explanation,
    FeatureExtractor,
    extract_explanations,
)
from pepler_cli.data.extraction.linking import sentence_pairs
from pepler_cli.data.extraction.phrases import MAX_FEATURE_WORDS
from pepler_cli.data.extraction.sentences import split_sentences, tokenize
from pepler_cli.data.extraction.tagger import pos_tag

__all__ = [
    "EMPTY",
    "NO_FEATURE",
    "NO_OPINION",
    "NO_SENTENCE",
    "MAX_FEATURE_WORDS",
    "MAX_SENTENCE_WORDS",
    "MIN_SENTENCE_WORDS",
    "Explanation",
    "FeatureExtractor",
    "extract_explanations",
    "pos_tag",
    "sentence_pairs",
    "split_sentences",
    "tokenize",
]
