"""Phrase-aware feature mentions: which features of a feature set an explanation names, multi-word ones included.

The paper's FMR/FCR/DIV test single tokens (``explainability.features_in``), so "patch cable" never counts.
Here each feature is cut with ``tokens.normalize``, as explanations are, and is mentioned when its whole token
sequence occurs in the explanation's tokens, which puts matches at word boundaries ("cable" is not found in
"cables"; "room" is found in "the room." because the full stop is its own token). Case is kept, as the paper
keeps it: "Room" does not mention "room".

Overlaps are settled leftmost-longest: the tokens are read left to right and, at each position, the longest
feature starting there is taken and its tokens are used up; a position where no feature starts is skipped.
So "a patch cable" mentions "patch cable" but not "cable", and with features "front desk" and "desk staff"
the text "front desk staff" mentions only "front desk".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pepler_cli.evaluation.metrics.tokens import normalize

Key = tuple[str, ...]


class FeatureMatcher:
    """Finds the features an explanation mentions (see the module's docstring for the matching rule).

    A feature whose normalised form is empty (a blank line) can never be mentioned and is ignored. Features
    that normalise to the same tokens ("room" and " room") are all mentioned together; the sets returned hold
    the features as they were given, so they compare directly with a record's ``feature``.
    """

    def __init__(self, features: Iterable[str]) -> None:
        names: dict[Key, set[str]] = {}
        for feature in features:
            key = tuple(normalize(feature))
            if key:
                names.setdefault(key, set()).add(feature)
        self._names: dict[Key, frozenset[str]] = {key: frozenset(group) for key, group in names.items()}
        # Candidates by first token, longest first, so the first one that fits at a position is the longest.
        starts: dict[str, list[Key]] = {}
        for key in self._names:
            starts.setdefault(key[0], []).append(key)
        self._starts: dict[str, tuple[Key, ...]] = {
            first: tuple(sorted(keys, key=len, reverse=True)) for first, keys in starts.items()
        }

    def find(self, tokens: Sequence[str]) -> frozenset[str]:
        """The features ``tokens`` (from ``tokens.normalize``) mention."""
        tokens = tuple(tokens)  # a slice of a tuple compares equal to a key; a list slice would not
        starts = self._starts
        # Most tokens start no feature; finding the few that do in one comprehension keeps the loop short.
        positions = [i for i, token in enumerate(tokens) if token in starts]
        if not positions:
            return frozenset()
        found: list[Key] = []
        free_from = 0  # tokens before this index belong to a match already taken
        for i in positions:
            if i < free_from:
                continue
            for key in starts[tokens[i]]:
                end = i + len(key)
                if tokens[i:end] == key:
                    found.append(key)
                    free_from = end
                    break
        if len(found) == 1:
            return self._names[found[0]]
        return frozenset[str]().union(*(self._names[key] for key in found))

    def find_all(self, token_lists: Iterable[Sequence[str]]) -> list[frozenset[str]]:
        """``find`` for each explanation, each distinct one matched once (generated texts repeat a lot)."""
        cache: dict[Key, frozenset[str]] = {}
        result: list[frozenset[str]] = []
        for tokens in token_lists:
            key = tuple(tokens)
            found = cache.get(key)
            if found is None:
                found = cache[key] = self.find(key)
            result.append(found)
        return result
