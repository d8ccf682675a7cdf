"""A loaded run that explains any (user, item) pairs: ``generate --pairs``, ``pepler explain``, ``pepler serve``.

:class:`Explainer` loads the run once, with what its training part says (who it trained, the features of
discrete prompts and predicted hints, what cold users and items get); :meth:`Explainer.explain` then explains a
list of pairs on the decoding path ``generate`` uses (generation/decode.py), so greedy texts are those
``generate`` writes for the same pairs.

- Unknown users and items (never trained by the run) follow ``--unknown`` (error, or skip: the pair gets no
  explanation), or, with ``--cold-start`` mean/neighbours/features, get a vector made for them (cold_start.py).
  Each call computes its cold vectors from the tables as trained, then puts the trained tables back: a call
  never changes what the next one gets.
- A pair's ``feature`` is its hint (a chosen one) for a run trained with ``--feature-hint``; a pair without one
  gets ``--feature`` when given, else the predicted feature (``--feature-predictor``): a pair has no test
  record to read. A run trained without hints cannot be told a feature: there a pair's feature is only what its
  explanation is scored against (FMR), as a test record's is.
- The run's dataset (``--data``, else the one its manifest names) says who was trained; when it is gone, the
  run's own users.txt and items.txt do, and what needs the training part (a discrete prompt, predicted hints,
  cold-start vectors) is refused in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pepler_cli.config import ExplainConfig, ExplainingConfig
from pepler_cli.data.feature_prediction import FeatureCounts
from pepler_cli.data.feature_prompts import FeatureIndex, discrete_prompt_ids, hint_ids
from pepler_cli.data.pairs import Pair
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import PreparedDataset
from pepler_cli.data.splits import KnownIds
from pepler_cli.distributed import SINGLE, World, gather_objects
from pepler_cli.errors import PeplerError
from pepler_cli.generation.cold_start import (
    Applied,
    ColdIds,
    HistoryLine,
    Trained,
    apply_cold_start,
    check_method,
    find_cold,
    history_features,
    with_history,
)
from pepler_cli.generation.decode import DecodeOptions, decode_in_batches
from pepler_cli.generation.hints import HintPlan, hint_plan, planned_hints
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.plugins import ExplanationModel
from pepler_cli.run_model import LoadedRun, load_run
from pepler_cli.text_cleanup import clean_up_spaces

Progress = Callable[[int, int], None]
Where = Callable[[int], str]  # how an error names the pair at a position ("pairs.jsonl: line 3")


@dataclass(frozen=True)
class Explanation:
    """What a pair gets: its explanation, the rating predicted (a run with a rating head), the hint its prompt
    carried, and whether it was cold (``Prediction.cold``)."""

    generated: str
    predicted_rating: float | None = None
    hint: str | None = None
    cold: str | None = None


@dataclass(frozen=True)
class Explained:
    """One call's explanations, one per pair in order; None for a pair left out (``--unknown skip``)."""

    explanations: list[Explanation | None]
    cold_ids: dict[str, int] = field(default_factory=dict)  # {"users": n, "items": n} cold in this call
    fell_back: dict[str, int] = field(default_factory=dict)  # of them, those given the mean vector

    @property
    def skipped(self) -> int:
        return sum(e is None for e in self.explanations)


@dataclass(frozen=True)
class Problem:
    """Why a pair cannot be explained: its position, the field at fault, and what is wrong."""

    position: int
    field: str  # user | item | feature
    message: str


@dataclass(frozen=True)
class RunData:
    """What the run's training part says, as far as explaining needs it."""

    path: Path | None  # the prepared dataset, None when it is gone
    dataset: PreparedDataset | None
    known: KnownIds
    own_data: bool  # the dataset is the one the run was trained on
    trained: Trained | None  # its training part (run's own dataset only)


class Explainer:
    """A loaded run ready to explain pairs (the module's docstring)."""

    def __init__(
        self,
        config: ExplainingConfig,
        run: LoadedRun,
        device: torch.device,
        history: Sequence[HistoryLine] = (),
    ) -> None:
        check_method(config.cold_start, run.model, config.run)
        self.config = config
        self.run = run
        self.device = device
        self.data = run_data(config, run)
        self.plan = _pairs_plan(config, run)
        self._refuse_without_training()
        trained = self.data.trained
        self.history = history_features(history, self.data.dataset.features if self.data.dataset else ())
        self.counts = (
            FeatureCounts.from_training(self.data.dataset.records, _train_numbers(self))
            if self.plan.mode == "predicted" and self.data.dataset is not None
            else None
        )
        self.prompt_features = trained.feature_index if trained is not None else None
        self._tables = _prompt_tables(run.model)

    @property
    def hinted(self) -> bool:
        return self.run.feature_hint != "none"

    def unknown(self, pairs: Sequence[Pair]) -> list[tuple[int, str]]:
        """(position, "user" or "item") of every id the run never trained, among ``pairs``."""
        known = self.data.known
        found = []
        for position, pair in enumerate(pairs):
            if pair.user not in known.users:
                found.append((position, "user"))
            if pair.item not in known.items:
                found.append((position, "item"))
        return found

    def problems(self, pairs: Sequence[Pair]) -> list[Problem]:
        """What no decoding can give, pair by pair: a pair without a feature for ``--feature-hint given``; and,
        with ``--unknown error`` and ``--cold-start error``, an id the run never trained."""
        found = []
        for position, pair in enumerate(pairs):
            if pair.feature is None and self.plan.mode == "given":
                found.append(
                    Problem(
                        position, "feature", "missing: --feature-hint given hints each pair's own feature"
                    )
                )
        if self.config.cold_start == "error" and self.config.unknown == "error":
            for position, side in self.unknown(pairs):
                value = getattr(pairs[position], side)
                found.append(Problem(position, side, f"{value!r} is a {side} {self.data.known.unknown_to}"))
        return sorted(found, key=lambda problem: problem.position)

    def check(self, pairs: Sequence[Pair], where: Where) -> None:
        """Refuse the first of :meth:`problems` in one line naming ``where(position)`` and the field."""
        found = self.problems(pairs)
        if found:
            first = found[0]
            unknown = len({p.position for p in found if p.field in ("user", "item")})
            hint = (
                f" ({unknown} of {len(pairs)} pairs have an unknown user or item; --unknown skip leaves them out, "
                "--cold-start gives them a vector)"
                if first.field in ("user", "item")
                else ""
            )
            raise PeplerError(f"{where(first.position)}: field '{first.field}': {first.message}{hint}")

    def explain(
        self,
        pairs: Sequence[Pair],
        options: DecodeOptions,
        where: Where,
        progress: Progress | None = None,
        world: World = SINGLE,
    ) -> Explained:
        """Every pair's explanation, in order (None for one left out by ``--unknown skip``)."""
        self.check(pairs, where)
        if self.config.cold_start == "error":
            unknown = {position for position, _ in self.unknown(pairs)}
            kept = [k for k in range(len(pairs)) if k not in unknown]
        else:
            kept = list(range(len(pairs)))
        chosen = [pairs[k] for k in kept]
        try:
            cold, applied = self._cold_start(chosen)
            inputs = self._inputs(chosen, applied, cold)
            hints = self._hints(chosen, inputs)
            texts = decode_texts(self.run, inputs, self.device, options, progress, world) if chosen else []
            ratings = predicted_ratings(self.run.model, inputs, self.device, options.batch_size)
        finally:
            self._put_back_tables()
        if self.config.clean_up_spaces:
            texts = [clean_up_spaces(text) for text in texts]
        explanations: list[Explanation | None] = [None] * len(pairs)
        for k, (position, pair) in enumerate(zip(kept, chosen)):
            explanations[position] = Explanation(
                texts[k].strip(),
                ratings[k] if ratings is not None else None,
                hints[k] if hints is not None else None,
                cold.mark(pair.user, pair.item),
            )
        cold_ids = {"users": len(cold.users), "items": len(cold.items)}
        fell_back = {f"{kind}s": count for kind, count in applied.fell_back.items()}
        return Explained(explanations, cold_ids, fell_back)

    def _refuse_without_training(self) -> None:
        """What needs the run's training part, refused in one line when its dataset is gone."""
        if self.data.trained is not None:
            return
        needs = [
            why
            for why, needed in (
                (
                    "a discrete prompt is made of the training part's features",
                    self.run.model.prompt_kind == "discrete",
                ),
                ("--feature-hint predicted chooses from the training part", self.plan.mode == "predicted"),
                (
                    f"--cold-start {self.config.cold_start} reads the training part",
                    self.config.cold_start != "error",
                ),
            )
            if needed
        ]
        if needs and self.data.dataset is not None:
            raise PeplerError(
                f"{self.config.run}: {needs[0]}, and {self.data.path} is not the dataset the run was trained on "
                "(its fingerprint differs)"
            )
        if needs:
            where = (self.run.manifest.get("dataset") or {}).get("path")
            raise PeplerError(
                f"{self.config.run}: {needs[0]}, and the dataset the run was trained on is not at {where} "
                "(give it with --data)"
            )

    def _cold_start(self, pairs: Sequence[Pair]) -> tuple[ColdIds, Applied]:
        data = self.data
        run_split = int(self.run.manifest["dataset"]["split"])
        cold_split = data.dataset.cold_splits.get(run_split) if data.own_data and data.dataset else None
        cold = find_cold(
            [p.user for p in pairs],
            [p.item for p in pairs],
            data.known.users,
            data.known.items,
            cold_split,
            data.trained,
        )
        applied = apply_cold_start(
            self.config.cold_start,
            self.run.model,
            self.run.entities,
            self.run.tokenizer,
            cold,
            data.trained,
            self.history,
        )
        return cold, applied

    def _inputs(self, pairs: Sequence[Pair], applied: Applied, cold: ColdIds) -> PromptInputs:
        entities = applied.entities
        users = [entities.user_row(p.user, f"pair {k + 1}") for k, p in enumerate(pairs)]
        items = [entities.item_row(p.item, f"pair {k + 1}") for k, p in enumerate(pairs)]
        inputs = PromptInputs(torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long))
        if self.run.model.prompt_kind == "discrete" and pairs:
            assert self.prompt_features is not None  # _refuse_without_training
            features: FeatureIndex = self.prompt_features
            if self.config.cold_start == "features":
                features = with_history(features, cold, self.history)
            prompt_ids = discrete_prompt_ids(pairs, self.run.tokenizer, features)
            inputs.prompt_tokens, inputs.prompt_mask = pad_left(prompt_ids, self.run.special.pad)
        return inputs

    def _hints(self, pairs: Sequence[Pair], inputs: PromptInputs) -> list[str] | None:
        """Each pair's hint: its own feature, else what the plan chooses (the module's docstring)."""
        if not self.hinted or not pairs:
            return None
        hints: list[str | None] = [p.feature.strip() if p.feature else None for p in pairs]
        missing = [k for k, hint in enumerate(hints) if hint is None]
        if missing:
            rows = torch.tensor(missing, dtype=torch.long)
            filled = planned_hints(
                self.plan, self.run, self.counts, [pairs[k] for k in missing], inputs.select(rows)
            )
            for k, hint in zip(missing, filled):
                hints[k] = hint
        chosen = [hint for hint in hints if hint is not None]
        inputs.hint_tokens, inputs.hint_mask = pad_left(
            hint_ids(chosen, self.run.tokenizer), self.run.special.pad
        )
        return chosen

    def _put_back_tables(self) -> None:
        """The prompt tables as trained: cold-start vectors live for one call (apply_cold_start replaces the
        tables' weights by grown copies and never writes into the trained ones)."""
        if self._tables is None:
            return
        model = self.run.model
        assert isinstance(model, ContinuousPromptModel)
        for table, weight in zip((model.user_embeddings, model.item_embeddings), self._tables):
            table.weight = weight
            table.num_embeddings = int(weight.shape[0])


def explain_pair(config: ExplainConfig) -> Explanation:
    """``pepler explain``: one pair's explanation (``config.feature``: the feature to explain it by)."""
    from pepler_cli.devices import resolve_device

    device = resolve_device(config.device)
    explainer = Explainer(config, load_run(config.run, device, config.trust_remote_code), device)
    options = DecodeOptions.from_config(config, explainer.run.max_tokens)
    explained = explainer.explain([Pair(config.user, config.item)], options, lambda _: str(config.run))
    explanation = explained.explanations[0]
    if explanation is None:
        raise PeplerError(
            f"{config.run}: user {config.user!r} or item {config.item!r} is one the run never saw in training "
            "(--unknown skip left the pair out)"
        )
    return explanation


def _prompt_tables(model: ExplanationModel) -> tuple[torch.nn.Parameter, torch.nn.Parameter] | None:
    if not isinstance(model, ContinuousPromptModel):
        return None
    return model.user_embeddings.weight, model.item_embeddings.weight


def _train_numbers(explainer: Explainer) -> list[int]:
    dataset = explainer.data.dataset
    assert dataset is not None
    return dataset.splits[int(explainer.run.manifest["dataset"]["split"])][0]


def _pairs_plan(config: ExplainingConfig, run: LoadedRun) -> HintPlan:
    """The hint of pairs without a feature of their own: ``--feature``, else ``--feature-hint`` (predicted by
    default: a pair has no test record for given to read)."""
    if run.feature_hint != "none" and config.feature is None and config.feature_hint is None:
        config = config.model_copy(update={"feature_hint": "predicted"})
    return hint_plan(config, run)


def run_data(config: ExplainingConfig, run: LoadedRun) -> RunData:
    """The run's dataset (``config.data``, else its manifest's), who it trained, and its training part."""
    named = config.data or (run.manifest.get("dataset") or {}).get("path")
    path = Path(named) if named else None
    if path is None or (config.data is None and not (path / "manifest.yaml").is_file()):
        known = KnownIds(set(run.entities.users), set(run.entities.items), "that the run has no vector for")
        return RunData(None, None, known, False, None)
    dataset = load_prepared(path)
    known, own_data = known_ids(run, dataset)
    run_split = int(run.manifest["dataset"]["split"])
    trained = Trained.of(dataset.records, dataset.splits[run_split][0]) if own_data else None
    return RunData(path, dataset, known, own_data, trained)


def known_ids(run: LoadedRun, dataset: PreparedDataset) -> tuple[KnownIds, bool]:
    """The users and items the run has trained, and whether ``dataset`` is the run's own.

    On the run's own dataset (same fingerprint), trained means: in the training part of the split the run was
    trained on; an id with a vector that training never touched (``train --allow-unseen``, a cold-start split)
    counts as unknown. On another dataset, all that is known is which ids have a vector in the run (users.txt,
    items.txt).
    """
    trained_on = run.manifest.get("dataset") or {}
    run_split = trained_on.get("split")
    if (
        dataset.fingerprint
        and dataset.fingerprint == trained_on.get("fingerprint")
        and run_split in dataset.splits
    ):
        users, items = dataset.training_ids(run_split)
        return KnownIds(users, items, f"the run never saw in training (split {run_split}, train)"), True
    no_vector = "that the run has no vector for (it was trained on another dataset)"
    return KnownIds(set(run.entities.users), set(run.entities.items), no_vector), False


def decode_texts(
    run: LoadedRun,
    inputs: PromptInputs,
    device: torch.device,
    options: DecodeOptions,
    progress: Progress | None,
    world: World,
) -> list[str]:
    """Every example's text in order; under torchrun each rank decodes its batches and all gather them."""
    special = run.special
    decoded: list[tuple[int, list[str]]] = []
    done, total = 0, int(inputs.users.shape[0])
    for start, ids in decode_in_batches(run.model, inputs, special.bos, special.eos, device, options, world):
        texts = run.tokenizer.batch_decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        decoded.append((start, texts))
        done += len(texts) * world.size  # the other ranks progress alike
        if progress:
            progress(min(done, total), total)
    everyone = [batch for part in gather_objects(decoded, world) for batch in part]
    return [text for _, texts in sorted(everyone, key=lambda batch: batch[0]) for text in texts]


@torch.no_grad()
def predicted_ratings(
    model: ExplanationModel, inputs: PromptInputs, device: torch.device, batch_size: int
) -> list[float] | None:
    if not model.predicts_ratings:
        return None
    out: list[float] = []
    for start in range(0, int(inputs.users.shape[0]), batch_size):
        users = inputs.users[start : start + batch_size].to(device)
        items = inputs.items[start : start + batch_size].to(device)
        predicted = model.predict_ratings(users, items)
        assert predicted is not None  # a model with a rating head predicts ratings
        out.extend(predicted.float().cpu().tolist())
    return out
