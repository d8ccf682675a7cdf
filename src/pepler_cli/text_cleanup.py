"""The clean-up that transformers 4.x applied to every decoded text, which the paper's numbers went through.

The authors' code decoded both the (truncated) references and the generated explanations with GPT-2's
``decode``, whose ``clean_up_tokenization_spaces`` was on by default in transformers 4.x: it removes the space
before . ? ! , and English clitics and around a lone apostrophe. transformers 5 no longer does it for GPT-2, so
pepler applies the same replacements itself, in the same order (EVALUATION.md, "Tokens").
"""

from __future__ import annotations

# (before, after) in the order transformers 4.x's PreTrainedTokenizerBase.clean_up_tokenization applied them.
REPLACEMENTS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def clean_up_spaces(text: str) -> str:
    """``text`` as transformers 4.x's decode returned it: "it 's good , really ." -> "it's good, really."."""
    for before, after in REPLACEMENTS:
        text = text.replace(before, after)
    return text
