"""All of the paper's metrics for a list of predictions, as one flat dict with stable keys."""

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
    if not predictions:
        raise PeplerError("there are no predictions to score")
    if not feature_set:
        raise PeplerError("the feature set is empty, so FCR is undefined")
    references = _normalize_all([p.reference for p in predictions])
    generated = _normalize_all([p.generated for p in predictions])
    scores: dict[str, float] = {"n": len(predictions)}
    scores.update(_text_scores(references, generated))
    scores.update(_explainability_scores(generated, [p.feature for p in predictions], feature_set))
    scores.update(_rating_scores(predictions, rating_range))
    return scores


def _normalize_all(texts: list[str]) -> list[list[str]]:
    # Generated explanations repeat a lot (USR is often below 0.3), so each distinct text is cut once.
    cache = {text: normalize(text) for text in set(texts)}
    return [cache[text] for text in texts]


def _text_scores(references: list[list[str]], generated: list[list[str]]) -> dict[str, float]:
    index = text.TextIndex(max_order=4)  # shared: BLEU and ROUGE look at the same distinct texts
    bleu = text.bleu_statistics(references, generated, max_order=4, index=index)
    scores = {
        "bleu_1": bleu.bleu(1),
        "bleu_4": bleu.bleu(4),
        **text.rouge_scores(references, generated, index),
    }
    return {key: 100.0 * value for key, value in scores.items()}


def _explainability_scores(
    generated: list[list[str]], true_features: list[str], feature_set: AbstractSet[str]
) -> dict[str, float]:
    mentioned = [explainability.features_in(tokens, feature_set) for tokens in generated]
    usn = explainability.unique_sentence_count(generated)
    scores: dict[str, float] = {
        "usr": usn / len(generated),
        "usn": usn,
        "fmr": explainability.feature_matching_ratio(mentioned, true_features),
        "fcr": explainability.feature_coverage_ratio(mentioned, feature_set),
    }
    if len(generated) >= 2:
        scores["div"] = explainability.feature_diversity(mentioned)
    return scores


def _rating_scores(
    predictions: Sequence[Prediction], rating_range: tuple[float, float] | None
) -> dict[str, float]:
    ratings = [p.rating for p in predictions if p.rating is not None]
    predicted = [p.predicted_rating for p in predictions if p.predicted_rating is not None]
    if len(ratings) < len(predictions) or len(predicted) < len(predictions):
        return {}
    return {
        "rmse": rating.rmse(ratings, predicted, rating_range),
        "mae": rating.mae(ratings, predicted, rating_range),
    }
