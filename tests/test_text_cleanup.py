"""transformers 4.x's clean-up of decoded text, which the paper's references and explanations went through."""

from __future__ import annotations

import pytest

from pepler_cli.text_cleanup import clean_up_spaces


@pytest.mark.parametrize(
    ("decoded", "cleaned"),
    [
        ("it 's good , really .", "it's good, really."),
        ("do n't ! why ? I 'm sure we 've , they 're", "don't! why? I'm sure we've, they're"),
        ("rock ' n roll", "rock'n roll"),
        ("no change here", "no change here"),
        (" .", "."),
        ("", ""),
        # what 4.x left alone: a clitic without its space, 'd and 'll, a space after punctuation
        ("he 'd , you 'll", "he 'd, you 'll"),
    ],
)
def test_clean_up_spaces(decoded: str, cleaned: str) -> None:
    assert clean_up_spaces(decoded) == cleaned


def test_the_replacements_run_in_transformers_order() -> None:
    # " ' " is replaced before " 's": "a ' s" -> "a's" (4.x), not left alone.
    assert clean_up_spaces("a ' s") == "a's"
