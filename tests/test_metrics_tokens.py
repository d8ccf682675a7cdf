"""The paper's token normalisation (EVALUATION.md, "Tokens")."""

from __future__ import annotations

import pytest

from pepler_cli.evaluation.metrics.tokens import normalize, normalize_text


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("the sound is crisp", ["the", "sound", "is", "crisp"]),
        # clitics split off as their own tokens
        ("don't", ["do", "n't"]),
        ("can't", ["ca", "n't"]),
        (
            "it's I'm we've they're he'd you'll",
            ["it", "'s", "I", "'m", "we", "'ve", "they", "'re", "he", "'d", "you", "'ll"],
        ),
        ("shouldn't've", ["should", "n't", "'ve"]),
        # no lowercasing, so the clitic rules (lowercase) do not fire on upper case
        ("DON'T", ["DON'T"]),
        ("The Room", ["The", "Room"]),
        # only the ASCII apostrophe counts
        ("rock\u2019s", ["rock\u2019s"]),
        # ( ) , ! ? . spaced out
        ("(great)", ["(", "great", ")"]),
        ("((x))", ["(", "(", "x", ")", ")"]),
        ("nice,clean.quiet!really?", ["nice", ",", "clean", ".", "quiet", "!", "really", "?"]),
        # runs of , . ! ? collapse to one token; different marks do not merge
        ("wait,,, what", ["wait", ",", "what"]),
        ("so...", ["so", "."]),
        ("wow!!!", ["wow", "!"]),
        ("what??", ["what", "?"]),
        ("what?!", ["what", "?", "!"]),
        (". . .", [".", ".", "."]),
        # ':' becomes a comma and ';' a full stop, a run of either one token (the authors' re.sub(':+', ...))
        ("note: good", ["note", ",", "good"]),
        ("a::b", ["a", ",", "b"]),
        ("a;;;b", ["a", ".", "b"]),
        ("a;b", ["a", ".", "b"]),
        ("a;.b", ["a", ".", ".", "b"]),
        ("a,:b", ["a", ",", ",", "b"]),
        ("a:;:b", ["a", ",", ".", ",", "b"]),
        # any Unicode whitespace separates; runs of it collapse; ends are stripped
        ("  a\tb\nc\u00a0d\u2003e  ", ["a", "b", "c", "d", "e"]),
        ("", []),
        (" \t ", []),
        # other marks are left alone
        ("well-made $20 50%", ["well-made", "$20", "50%"]),
    ],
)
def test_normalize(text: str, tokens: list[str]) -> None:
    assert normalize(text) == tokens


def test_normalize_text_joins_with_single_spaces() -> None:
    assert normalize_text("it's  great!!") == "it 's great !"
    assert normalize_text("   ") == ""


def test_normalising_twice_changes_nothing() -> None:
    # The reference is stored already normalised in some pipelines; a second pass must be harmless.
    once = normalize_text("I don't know... (maybe): it's fine;ok?!")
    assert normalize(once) == once.split(" ")


def _authors_rule(text: str) -> list[str]:
    """The authors' post-processing as EVALUATION.md states it: one re.sub after another, in their order."""
    import re

    for clitic in ("'s", "'m", "'ve", "n't", "'re", "'d", "'ll"):
        text = text.replace(clitic, " " + clitic)
    for pattern, spaced in (
        (r"\(", " ( "), (r"\)", " ) "), (",+", " , "), (":+", " , "), (";+", " . "),
        (r"\.+", " . "), ("!+", " ! "), (r"\?+", " ? "),
    ):  # fmt: skip
        text = re.sub(pattern, spaced, text)
    return text.split()


def test_adversarial_punctuation_follows_the_authors_rule() -> None:
    import random

    rng = random.Random(7)
    marks = [",", ":", ";", ".", "!", "?", "(", ")", " ", "a", "b", "'s", "n't"]
    for _ in range(3000):
        text = "".join(rng.choice(marks) for _ in range(rng.randint(0, 14)))
        assert normalize(text) == _authors_rule(text), text
