"""Grounding: are an explanation's features those of its item and of its reference? (iFMR, feature
precision/recall, feature hallucination.)

Every function takes ``mentioned``: per explanation, the set of features it mentions (``mentions.FeatureMatcher``
or ``explainability.features_in``), as the features appear in the dataset's feature set. ``item_features`` maps
an item to the features of its training records; an item absent from it had no training record, so it has no
feature and any feature its explanation mentions is a hallucination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

_NONE: frozenset[str] = frozenset()


def item_feature_mention_ratio(
    mentioned: Sequence[AbstractSet[str]], items: Sequence[str], item_features: Mapping[str, AbstractSet[str]]
) -> float:
    """iFMR (MAPLE): share of explanations that mention at least one feature of their item's training records.

    iFMR = (1/N) Σ_k [G_k ∩ F(i_k) ≠ ∅], with G_k the features explanation k mentions and F(i_k) those of its
    item's training records.
    """
    hits = sum(
        not found.isdisjoint(item_features.get(item, _NONE))
        for found, item in zip(mentioned, items, strict=True)
    )
    return hits / _count(mentioned, "iFMR")


def feature_precision_recall(
    mentioned: Sequence[AbstractSet[str]], reference_features: Sequence[AbstractSet[str]]
) -> tuple[float, float]:
    """Feature precision and recall of the explanations against their references', micro-averaged.

    precision = Σ_k |G_k ∩ R_k| / Σ_k |G_k| and recall = Σ_k |G_k ∩ R_k| / Σ_k |R_k|, with G_k the features
    explanation k mentions and R_k its reference's features. A ratio whose denominator is 0 (nothing mentioned
    anywhere; no reference feature anywhere; no explanations) is 0.0: there is nothing correct to credit.
    Summing before dividing weighs each feature mention equally, so explanations that mention nothing do not
    count as perfect (or undefined) precision.
    """
    shared = generated = reference = 0
    for found, expected in zip(mentioned, reference_features, strict=True):
        shared += len(found & expected)
        generated += len(found)
        reference += len(expected)
    precision = shared / generated if generated else 0.0
    recall = shared / reference if reference else 0.0
    return precision, recall


def hallucination_rates(
    mentioned: Sequence[AbstractSet[str]], items: Sequence[str], item_features: Mapping[str, AbstractSet[str]]
) -> tuple[float, float]:
    """Feature hallucination (text-exp-recsys24): D-FHR and C-FHR.

    With H_k = G_k − F(i_k), the features explanation k mentions that its item never had in training:
    D-FHR = (1/N) Σ_k [H_k ≠ ∅], the share of explanations with a hallucinated feature, and
    C-FHR = Σ_k |H_k| / Σ_k |G_k|, the share of all feature mentions that are hallucinated (0.0 when no
    explanation mentions a feature: nothing was hallucinated).
    """
    with_one = hallucinated = total = 0
    for found, item in zip(mentioned, items, strict=True):
        extra = len(found - item_features.get(item, _NONE))
        with_one += extra > 0
        hallucinated += extra
        total += len(found)
    return with_one / _count(mentioned, "D-FHR"), hallucinated / total if total else 0.0


def _count(mentioned: Sequence[AbstractSet[str]], metric: str) -> int:
    if not mentioned:
        raise ValueError(f"{metric} needs at least one explanation")
    return len(mentioned)
