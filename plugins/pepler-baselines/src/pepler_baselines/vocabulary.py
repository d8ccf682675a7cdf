"""The baselines' word vocabulary: whitespace-separated words, the most frequent 20,000 kept (the authors' rule).

As in the authors' code (lileipisces/NRT, Att2Seq, PETER, ``utils.py``): four special tokens first, ``<bos>`` 0,
``<eos>`` 1, ``<pad>`` 2, ``<unk>`` 3; words are counted as ``str.split()`` gives them (no lower-casing, no
punctuation split); when there are more distinct words than the size, the most frequent are kept, ties going to the
word seen first, and ordered by count; otherwise every word is kept in the order first seen. PETER also counts each
record's feature as ONE token (a multi-word feature such as "front desk" is a word of its own), which is how
PETER+ reads the feature.

One deviation, on purpose: pepler counts the training part's texts only; the authors counted every record, test
texts included. A test word the training part lacks is ``<unk>`` either way for the model's training; pepler
simply does not let the test texts decide which words are kept.

It offers what pepler asks of a tokenizer (``plugins.Tokenizer``), so the shared pipeline (token cache, batches,
decoding, feature hints) runs on it unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>", "<unk>")
BOS, EOS, PAD, UNK = range(4)
VOCABULARY_FILE = "vocabulary.json"  # in the run's tokenizer/ directory: the words, in id order


class WordVocabulary:
    """Word ids for the baselines; ``phrases`` are multi-word entries (PETER's features) matched whole."""

    bos_token_id = BOS
    eos_token_id = EOS
    pad_token_id = PAD
    unk_token_id = UNK
    chat_template = None  # not a chat model: explanations follow <bos> alone

    def __init__(self, words: Sequence[str]) -> None:
        if tuple(words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a word vocabulary starts with {', '.join(SPECIAL_TOKENS)}")
        self.words = list(words)
        self.ids = {word: index for index, word in enumerate(self.words)}
        if len(self.ids) != len(self.words):
            raise ValueError("a word vocabulary holds each word once")

    @classmethod
    def count(cls, texts: Sequence[str], size: int, features: Sequence[str] | None = None) -> WordVocabulary:
        """The vocabulary of ``texts`` (with ``features``, each record's feature as one token after its text's
        words, as PETER counts them), cut to the ``size`` most frequent when larger."""
        counts: Counter[str] = Counter()
        for index, text in enumerate(texts):
            counts.update(text.split())
            if features is not None and features[index]:
                counts[features[index]] += 1
        # Counter keeps first-seen order; sorted() is stable, so equal counts keep it too.
        words = list(counts) if len(counts) <= size else sorted(counts, key=counts.__getitem__, reverse=True)
        return cls([*SPECIAL_TOKENS, *words[:size]])

    def __len__(self) -> int:
        return len(self.words)

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        """``{"input_ids": …}`` for each text: a text that is a whole vocabulary entry (a feature) is that one id,
        any other its words' ids, ``<unk>`` for a word not kept."""
        return {"input_ids": [self.encode(text) for text in texts]}

    def encode(self, text: str) -> list[int]:
        whole = self.ids.get(text.strip())
        if whole is not None and whole >= len(SPECIAL_TOKENS):
            return [whole]
        return [self.ids.get(word, UNK) for word in text.split()]

    def batch_decode(self, ids: list[list[int]], skip_special_tokens: bool = False, **_: Any) -> list[str]:
        """Words joined by spaces; ``<unk>`` (and any other special token not skipped) stays as written, as the
        authors' ``ids2tokens`` kept it."""
        skipped = {BOS, EOS, PAD} if skip_special_tokens else set()
        return [" ".join(self.words[i] for i in row if i not in skipped) for row in ids]

    def get_vocab(self) -> dict[str, int]:
        return dict(self.ids)

    def save_pretrained(self, directory: str) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / VOCABULARY_FILE).write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> WordVocabulary:
        """The vocabulary a run saved; a damaged file is one line naming it."""
        path = Path(directory) / VOCABULARY_FILE
        try:
            words = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise ValueError("expected a JSON list of words")
            return cls(words)
        except (OSError, ValueError) as error:
            raise PeplerError(f"{path}: not a word vocabulary ({error})") from None
