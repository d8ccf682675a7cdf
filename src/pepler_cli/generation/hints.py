"""Feature hints at generation time: which feature each pair's prompt carries, and how the predictions say so.

A run trained with ``--feature-hint`` (given or predicted: training always hints the record's own feature) reads
a feature's words after its user/item prompt. At generation the feature is

- ``given``: the test record's own feature, the PETER+ setting: an upper bound that reads the test record,
  labelled so in every file and table;
- ``predicted``: chosen from the training data alone by a predictor (``--feature-predictor``): ``counts``
  (``data.feature_prediction``, the default) or ``learned`` (``modeling.feature_scorer``, fitted when the run was
  trained). On the bundled dataset's test part counts chose the record's own feature for 16.9% of the pairs,
  learned for 14.9% (on the validation part learned led, 19.8% against 15.8%; results/feature-hints.json);
- ``chosen``: the caller's ``--feature``, the same for every pair (controllable explanations), or each pair's
  own ``feature`` (``generate --pairs``, ``serve``: generation/explainer.py).

A run trained without hints never saw one; hinting it is refused, as generating a hinted run without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pepler_cli.config import ExplainingConfig
from pepler_cli.data.feature_prediction import FeatureCounts
from pepler_cli.data.prepared.records import PreparedDataset, Record
from pepler_cli.errors import PeplerError
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.feature_scorer import load_feature_scorer, predict_features
from pepler_cli.run_model import LoadedRun
from pepler_cli.runs import FEATURE_SCORER


class Pair(Protocol):
    """What a hint is chosen for: a record, or a pair of a pairs file (data/pairs.py)."""

    @property
    def user(self) -> str: ...

    @property
    def item(self) -> str: ...


@dataclass(frozen=True)
class HintPlan:
    """What a generation hints: the mode (``predictions.FEATURE_HINT_MODES``) and its choices."""

    mode: str  # none | given | predicted | chosen
    predictor: str | None = None  # predicted: counts | learned
    feature: str | None = None  # chosen: the caller's feature

    def record(self) -> dict[str, Any]:
        """The sidecar's ``feature_hint`` (docs/formats.md)."""
        return {
            "mode": self.mode,
            "predictor": self.predictor,
            "feature": self.feature,
            "reads_test_record": self.mode == "given",
        }


def hint_plan(config: ExplainingConfig, run: LoadedRun) -> HintPlan:
    """The hint ``config`` asks of ``run`` (its training mode by default), refused when the run cannot read it."""
    trained = run.feature_hint
    if config.feature is not None:
        plan = HintPlan("chosen", feature=config.feature.strip())
    else:
        mode = config.feature_hint or trained
        plan = HintPlan(mode, predictor=config.feature_predictor if mode == "predicted" else None)
    if trained == "none" and plan.mode != "none":
        flag = "--feature" if plan.mode == "chosen" else f"--feature-hint {plan.mode}"
        raise PeplerError(
            f"{config.run}: {flag} needs a run trained with --feature-hint given or predicted; this one was trained "
            "without feature hints"
        )
    if trained != "none" and plan.mode == "none":
        raise PeplerError(
            f"{config.run}: the run was trained with --feature-hint {trained} and reads a feature in every prompt; "
            "choose --feature-hint given or predicted, or --feature"
        )
    if plan.predictor == "learned" and not isinstance(run.model, ContinuousPromptModel):
        raise PeplerError(
            f"{config.run}: --feature-predictor learned scores the user and item vectors of PEPLER's continuous "
            "prompt; this run has none (use counts)"
        )
    return plan


def hint_features(
    plan: HintPlan,
    run: LoadedRun,
    dataset: PreparedDataset,
    train_numbers: Sequence[int],
    records: Sequence[Record],
    inputs: PromptInputs,
) -> list[str] | None:
    """Each record's hint (None for mode none). ``train_numbers``: the training part the predictors read;
    ``inputs``: the records' prompt rows (the learned predictor reads their vectors)."""
    if plan.mode == "none":
        return None
    if plan.mode == "given":
        return [r.feature for r in records]
    counts = FeatureCounts.from_training(dataset.records, train_numbers) if plan.mode == "predicted" else None
    return planned_hints(plan, run, counts, records, inputs)


def planned_hints(
    plan: HintPlan,
    run: LoadedRun,
    counts: FeatureCounts | None,
    pairs: Sequence[Pair],
    inputs: PromptInputs,
) -> list[str]:
    """Each pair's hint by a ``chosen`` or ``predicted`` plan; ``counts``: the training part's feature counts
    (needed by predicted); ``pairs``: anything with ``user`` and ``item``, in the order of ``inputs``' rows."""
    if plan.mode == "chosen":
        assert plan.feature is not None
        return [plan.feature] * len(pairs)
    assert plan.mode == "predicted" and counts is not None, "given and none hint nothing chosen here"
    if plan.predictor == "learned":
        assert isinstance(run.model, ContinuousPromptModel)
        scorer = load_feature_scorer(run.path / FEATURE_SCORER)
        return predict_features(
            scorer,
            run.model,
            counts,
            [p.user for p in pairs],
            [p.item for p in pairs],
            inputs.users,
            inputs.items,
        )
    return [counts.predict(p.user, p.item) for p in pairs]
