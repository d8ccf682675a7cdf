"""The token ids that frame an explanation: ``<bos> words <eos>``, and the (masked) padding."""

from __future__ import annotations

from dataclasses import dataclass

from pepler_cli.errors import PeplerError
from pepler_cli.plugins import Tokenizer


@dataclass(frozen=True)
class SpecialTokens:
    bos: int
    eos: int
    pad: int


def special_tokens(tokenizer: Tokenizer) -> SpecialTokens:
    """GPT-2 has one special token, <|endoftext|>, which serves as <bos>, <eos> and (masked) padding."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise PeplerError("the backbone's tokenizer has no end-of-sequence token")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return SpecialTokens(bos=bos, eos=eos, pad=pad)
