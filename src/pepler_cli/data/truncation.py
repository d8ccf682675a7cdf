"""Cut explanations to at most N BPE tokens of a given tokenizer, exactly as the PEPLER authors do (GPT-2's).

The authors' loader keeps ``tokenizer.decode(tokenizer(text)["input_ids"][:20])``. Run one record at a time
that costs many minutes on Yelp's 1.3 million records; even the Rust tokenizer's batch encode spends most of
its time in its pre-tokenizer. The same strings come out faster here:

- identical sentences (frequent in template-style data) are handled once;
- GPT-2's byte-level BPE cuts a text into pieces with one regular expression and encodes each piece on its
  own, so a sentence's ids are the concatenation of its pieces' ids. For printable-ASCII texts (where that
  expression means the same in every regex engine) the pieces are cut with Python's ``re`` and each
  *distinct* piece is encoded once by the tokenizer itself. Every other text (non-ASCII, control
  characters, text containing a special token such as ``<|endoftext|>``) goes through the tokenizer whole.
- only texts longer than the limit are decoded. Byte-level BPE is lossless, so a short text decodes to
  itself. Whether the tokenizer's ``decode`` really gives a text back unchanged (older transformers
  versions "cleaned up" spaces before punctuation) is tested on a probe; when it does not, every text is
  decoded, exactly as the formula says.

The shortcut is used only for a tokenizer built the way GPT-2's is (no normalizer, a ByteLevel
pre-tokenizer with GPT-2's expression, no added special tokens), and it is checked against the tokenizer on
a sample of every run; ``tests/test_prepare_nete.py`` compares the result with the one-at-a-time formula.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from tokenizers import models, pre_tokenizers

BATCH_SIZE = 50_000
SELF_CHECK = 300

# GPT-2's pre-tokenizer expression restricted to ASCII: \p{L} is [A-Za-z], \p{N} is [0-9], and in a
# printable-ASCII text the only whitespace is the space.
_GPT2_ASCII_PIECES = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""
)


def truncate_texts(
    texts: Sequence[str],
    max_tokens: int,
    tokenizer: Any,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> list[str]:
    """Each text cut to its first ``max_tokens`` tokens of ``tokenizer`` (a transformers tokenizer: data
    knows no model, the caller passes it); ``progress(n)`` reports distinct texts done.

    The returned list shares one string object between equal texts, which also saves memory.
    """
    encoder = _Encoder(tokenizer)
    unique = list(dict.fromkeys(texts))
    changed: dict[str, str] = {}
    done = 0
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        cut = encoder.truncated_ids(batch, max_tokens)
        if cut:
            positions = list(cut)
            for position, text in zip(positions, encoder.decode([cut[p] for p in positions])):
                if text != batch[position]:
                    changed[batch[position]] = text
        done += len(batch)
        if progress is not None:
            progress(done)
    if not changed:
        return list(texts)
    get = changed.get
    return [get(text, text) for text in texts]


# Spaces before punctuation and contractions: what a "clean-up" on decode would change.
_ROUND_TRIP_PROBE = " a , b . c 's d n't e ! f ? g  h é"


class _Encoder:
    """Token ids of texts, through the piece cache when the tokenizer allows it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        if self.backend is not None:
            # The Rust tokenizer directly only where it gives what ``tokenizer(text)`` gives.
            probe = [_ROUND_TRIP_PROBE, "Hello world"]
            if self.encode(probe) != tokenizer(probe)["input_ids"]:
                self.backend = None
        self.special = [str(token) for token in getattr(tokenizer, "get_added_vocab", dict)()]
        self.piece_ids: dict[str, list[int]] = {}
        self.piece_lengths: dict[str, int] = {}
        self.lossless = self.decode(self.encode([_ROUND_TRIP_PROBE]))[0] == _ROUND_TRIP_PROBE
        self.fast = self.lossless and self.backend is not None and _gpt2_like(self.backend)
        self.checked = False

    def encode(self, texts: list[str]) -> list[list[int]]:
        """The tokenizer's own ids, as ``tokenizer(text)["input_ids"]`` gives them."""
        if not texts:
            return []
        if self.backend is not None:
            encode = getattr(self.backend, "encode_batch_fast", None) or self.backend.encode_batch
            return [encoding.ids for encoding in encode(texts, add_special_tokens=True)]
        return self.tokenizer(texts)["input_ids"]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.tokenizer.batch_decode(ids)

    def truncated_ids(self, texts: list[str], max_tokens: int) -> dict[int, list[int]]:
        """Position in ``texts`` -> its first ``max_tokens`` ids, for every text that decoding would change:
        those longer than that, or all of them when decode does not give a text back unchanged."""
        if not self.fast:
            everything = not self.lossless
            return {
                p: ids[:max_tokens]
                for p, ids in enumerate(self.encode(texts))
                if everything or len(ids) > max_tokens
            }
        if not self.checked:
            self._self_check(texts)
            if not self.fast:
                return self.truncated_ids(texts, max_tokens)
        special = self.special
        findall = _GPT2_ASCII_PIECES.findall
        simple: list[int] = []
        pieces: list[list[str]] = []
        hard: list[int] = []
        for position, text in enumerate(texts):
            if text.isascii() and text.isprintable() and not any(token in text for token in special):
                simple.append(position)
                pieces.append(findall(text))
            else:
                hard.append(position)
        self._learn_pieces(pieces)

        cut: dict[int, list[int]] = {}
        lengths = self.piece_lengths.__getitem__
        piece_ids = self.piece_ids
        for position, text_pieces in zip(simple, pieces):
            if sum(map(lengths, text_pieces)) > max_tokens:
                ids: list[int] = []
                for piece in text_pieces:
                    ids += piece_ids[piece]
                    if len(ids) >= max_tokens:
                        break
                cut[position] = ids[:max_tokens]
        for position, ids in zip(hard, self.encode([texts[p] for p in hard])):
            if len(ids) > max_tokens:
                cut[position] = ids[:max_tokens]
        return cut

    def _learn_pieces(self, pieces: list[list[str]]) -> None:
        known = self.piece_ids
        new = list({piece for text_pieces in pieces for piece in text_pieces if piece not in known})
        for piece, ids in zip(new, self.encode(new)):
            known[piece] = ids
            self.piece_lengths[piece] = len(ids)

    def _self_check(self, texts: list[str]) -> None:
        """Compare the piece route with the tokenizer on a sample; on any difference, stop using it."""
        self.checked = True
        sample = [t for t in texts[:SELF_CHECK] if t.isascii() and t.isprintable()]
        findall = _GPT2_ASCII_PIECES.findall
        pieces = [findall(text) for text in sample]
        self._learn_pieces(pieces)
        for text_pieces, ids in zip(pieces, self.encode(sample)):
            joined: list[int] = []
            for piece in text_pieces:
                joined += self.piece_ids[piece]
            if joined != ids:
                self.fast = False
                return


def _gpt2_like(backend: Any) -> bool:
    """True for a tokenizer whose ids are the concatenation of its GPT-2 regex pieces' ids."""
    try:
        if backend.normalizer is not None or not isinstance(backend.model, models.BPE):
            return False
        pre = backend.pre_tokenizer
        if not isinstance(pre, pre_tokenizers.ByteLevel) or pre.add_prefix_space or not pre.use_regex:
            return False
        # No special tokens added around a text (GPT-2 adds none).
        return (
            backend.encode("a", add_special_tokens=True).ids
            == backend.encode("a", add_special_tokens=False).ids
        )
    except Exception:
        return False
