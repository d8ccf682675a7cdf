"""The token ids that frame an explanation: ``<bos> words <eos>``, the (masked) padding, and for a chat model the
opening of its answer.

Where an explanation starts matters to a pretrained LM. GPT-2 saw ``<|endoftext|>`` before every document, so
the paper's ``<bos>`` is that token alone. A chat model (SmolLM2-Instruct, Llama-Instruct…) was trained on
conversations whose every turn opens with a role (``<|im_start|>assistant\\n``); after its start token alone it
expects a role or markup: SmolLM2-135M-Instruct puts 39% of the next token's probability on "-" and "_"
there, and a lightly tuned run still began 193 of 874 explanations with one of them. For such a model an
explanation follows the opening of an assistant turn, as its answers did in training: its template's
generation prompt. The last token of that opening is the ``bos`` fed before the first word; the ones before it
(``lead``) sit between the prompt and ``bos``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.plugins import SpecialTokens, Tokenizer


def special_tokens(tokenizer: Tokenizer, start: Sequence[int] | None = None) -> SpecialTokens:
    """GPT-2 has one special token, <|endoftext|>, which serves as <bos>, <eos> and (masked) padding.

    ``start`` (a run's recorded :func:`explanation_start`) replaces <bos> by the tokens an explanation follows.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise PeplerError("the backbone's tokenizer has no end-of-sequence token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if start:
        return SpecialTokens(bos=int(start[-1]), eos=eos, pad=pad, lead=tuple(int(t) for t in start[:-1]))
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    return SpecialTokens(bos=bos, eos=eos, pad=pad)


def explanation_start(tokenizer: Tokenizer) -> list[int]:
    """The tokens a new run's explanations follow: a chat model's opening of an assistant turn (see the module's
    docstring), else <bos> alone (GPT-2 and other plain LMs: the paper's framing)."""
    opening = _answer_opening(tokenizer)
    if opening:
        ids = tokenizer(opening, add_special_tokens=False)["input_ids"]
        if ids:
            return [int(t) for t in ids]
    return special_tokens(tokenizer).start


def _answer_opening(tokenizer: Any) -> str:
    """The text a chat template adds to open the assistant's turn ("" without a chat template): the template
    rendered with and without ``add_generation_prompt``, the difference."""
    if not getattr(tokenizer, "chat_template", None):
        return ""
    turn = [{"role": "user", "content": "x"}]
    try:
        with_opening = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
        without = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=False)
    except Exception:  # noqa: BLE001 — a template that cannot render a user turn has no answer opening to use
        return ""
    if not isinstance(with_opening, str) or not isinstance(without, str):
        return ""
    if not with_opening.startswith(without):
        return ""
    return with_opening[len(without) :]
