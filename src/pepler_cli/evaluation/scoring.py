"""All of the paper's metrics for a list of predictions, as one flat dict with stable keys.

The per-pair work (tokens, clipped n-gram matches, ROUGE, feature mentions) is done once in
:class:`PaperPairs`; the scores of the whole list or of any group of it (``pepler score --by``) then follow by
summing over the group's pairs, with the same numbers the whole-list computation gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.metrics import explainability, rating, text
from pepler_cli.evaluation.metrics.tokens import normalize
from pepler_cli.predictions import Prediction

# Every key score_predictions can return, in the order of the paper's tables.
TEXT_KEYS = ("bleu_1", "bleu_4", *text.ROUGE_KEYS)
EXPLAINABILITY_KEYS = ("usr", "usn", "fmr", "fcr", "div")
RATING_KEYS = ("rmse", "mae")
ALL_KEYS = ("n", *TEXT_KEYS, *EXPLAINABILITY_KEYS, *RATING_KEYS)


def score_predictions(
    predictions: Sequence[Prediction],
    feature_set: AbstractSet[str],
    rating_range: tuple[float, float] | None,
) -> dict[str, float]:
    """Score ``predictions`` exactly as the paper did (EVALUATION.md).

    Text metrics are ×100. ``div`` is left out when there are fewer than two predictions (it is a mean over
    pairs), and ``rmse``/``mae`` unless every prediction has both ``rating`` and ``predicted_rating``.
    """
    return PaperPairs(predictions, feature_set, rating_range).scores()


def normalize_all(texts: Sequence[str]) -> list[list[str]]:
    """Every text's tokens; each distinct text is cut once (generated explanations repeat: USR is often < 0.3)."""
    cache = {text: normalize(text) for text in set(texts)}
    return [cache[text] for text in texts]


class PaperPairs:
    """The predictions with each pair's share of the paper's metrics, computed once."""

    def __init__(
        self,
        predictions: Sequence[Prediction],
        feature_set: AbstractSet[str],
        rating_range: tuple[float, float] | None,
        references: list[list[str]] | None = None,  # the references' tokens, when already cut
        generated: list[list[str]] | None = None,  # the explanations' tokens
    ) -> None:
        if not predictions:
            raise PeplerError("there are no predictions to score")
        if not feature_set:
            raise PeplerError("the feature set is empty, so FCR is undefined")
        self.predictions = predictions
        self.feature_set = feature_set
        self.rating_range = rating_range
        self.references = (
            references if references is not None else normalize_all([p.reference for p in predictions])
        )
        self.generated = (
            generated if generated is not None else normalize_all([p.generated for p in predictions])
        )
        index = text.TextIndex(max_order=4)  # shared: BLEU and ROUGE look at the same distinct texts
        pairs = list(zip(self.references, self.generated, strict=True))
        self.bleu_matches = [text.pair_bleu_matches(r, g, index, max_order=4) for r, g in pairs]
        rouge = text.RougeAccumulator(index)
        self.rouge = [rouge.pair(r, g) for r, g in pairs]
        found = {key: explainability.features_in(key, feature_set) for key in set(map(tuple, self.generated))}
        self.mentioned = [found[tuple(tokens)] for tokens in self.generated]

    def scores(self, rows: Sequence[int] | None = None) -> dict[str, float]:
        """The paper's metrics of the pairs ``rows`` (default: all, in order)."""
        rows = range(len(self.predictions)) if rows is None else rows
        if not rows:
            raise PeplerError("there are no predictions to score")
        scores: dict[str, float] = {"n": len(rows)}
        scores.update(self._text_scores(rows))
        scores.update(self._explainability_scores(rows))
        scores.update(self._rating_scores(rows))
        return scores

    def _text_scores(self, rows: Sequence[int]) -> dict[str, float]:
        bleu = text.sum_bleu_statistics(
            self.bleu_matches,
            [len(g) for g in self.generated],
            [len(r) for r in self.references],
            rows,
            max_order=4,
        )
        sums = [0.0] * len(text.ROUGE_KEYS)
        for row in rows:  # added pair by pair, in order, as the paper averaged
            for position, value in enumerate(self.rouge[row]):
                sums[position] += value
        scores = {
            "bleu_1": bleu.bleu(1),
            "bleu_4": bleu.bleu(4),
            **{key: total / len(rows) for key, total in zip(text.ROUGE_KEYS, sums)},
        }
        return {key: 100.0 * value for key, value in scores.items()}

    def _explainability_scores(self, rows: Sequence[int]) -> dict[str, float]:
        mentioned = [self.mentioned[row] for row in rows]
        usn = explainability.unique_sentence_count([self.generated[row] for row in rows])
        scores: dict[str, float] = {
            "usr": usn / len(rows),
            "usn": usn,
            "fmr": explainability.feature_matching_ratio(
                mentioned, [self.predictions[r].feature for r in rows]
            ),
            "fcr": explainability.feature_coverage_ratio(mentioned, self.feature_set),
        }
        if len(rows) >= 2:
            scores["div"] = explainability.feature_diversity(mentioned)
        return scores

    def _rating_scores(self, rows: Sequence[int]) -> dict[str, float]:
        chosen = [self.predictions[row] for row in rows]
        ratings = [p.rating for p in chosen if p.rating is not None]
        predicted = [p.predicted_rating for p in chosen if p.predicted_rating is not None]
        if len(ratings) < len(chosen) or len(predicted) < len(chosen):
            return {}
        return {
            "rmse": rating.rmse(ratings, predicted, self.rating_range),
            "mae": rating.mae(ratings, predicted, self.rating_range),
        }
