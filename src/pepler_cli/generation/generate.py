"""``pepler generate`` as a library call: a finished run explains one part of a split into preds.jsonl."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pepler_cli.config import GenerateConfig, saved_options
from pepler_cli.data.cold_start import ColdKind
from pepler_cli.data.feature_prompts import FeatureIndex, discrete_prompt_ids, hint_ids
from pepler_cli.data.pairs import Pair, read_pairs
from pepler_cli.data.prepared.layout import SPLIT_PARTS
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import PreparedDataset, Record
from pepler_cli.data.splits import KnownIds, keep_known_pairs
from pepler_cli.distributed import World, barrier, process_group, rank_device
from pepler_cli.errors import PeplerError
from pepler_cli.files import ensure_new_output, output_lock, sha256_file
from pepler_cli.generation.cold_start import (
    Applied,
    ColdIds,
    HistoryLine,
    Trained,
    apply_cold_start,
    check_method,
    find_cold,
    history_features,
    read_history,
    with_history,
)
from pepler_cli.generation.decode import DecodeOptions
from pepler_cli.generation.explainer import Explainer, decode_texts, known_ids, predicted_ratings
from pepler_cli.generation.hints import HintPlan, hint_features, hint_plan
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.predictions import Prediction, feature_hint_label, write_predictions
from pepler_cli.run_model import LoadedRun, load_run
from pepler_cli.text_cleanup import clean_up_spaces

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerateResult:
    predictions: int
    out: Path
    split_number: int
    split: str
    skipped: int = 0  # pairs left out with --unknown skip
    cold: int = 0  # predictions of cold pairs (generation/cold_start.py)
    cold_ids: dict[str, int] = field(default_factory=dict)  # {"users": n, "items": n} that were cold
    # {"users": n, "items": n}: cold ones given the mean for want of anything known (neighbours, features)
    fell_back: dict[str, int] = field(default_factory=dict)
    hint_label: str = ""  # predictions.feature_hint_label of the sidecar's feature_hint ("" without a hint)
    more: tuple[str, ...] = ()  # anything else the command should say

    def notes(self, cold_start: str) -> list[str]:
        """What the command says besides the count: pairs skipped, cold pairs and fallbacks, the feature hint."""
        lines = []
        if self.skipped:
            lines.append(
                f"skipped {self.skipped} pairs whose user or item the run never saw (--unknown skip)"
            )
        if self.cold:
            users, items = self.cold_ids["users"], self.cold_ids["items"]
            lines.append(
                f"{_count(self.cold, 'cold pair')} ({_count(users, 'cold user')}, {_count(items, 'cold item')}; "
                f"--cold-start {cold_start})"
            )
        if any(self.fell_back.values()):
            users, items = self.fell_back["users"], self.fell_back["items"]
            lines.append(
                f"--cold-start {cold_start}: {_count(users, 'cold user')} and {_count(items, 'cold item')} got "
                "the mean vector: nothing is known of them"
                + (", or no trained one shares a feature with them" if cold_start == "neighbours" else "")
            )
        if self.hint_label:
            lines.append(f"feature hint: {self.hint_label}")
        return [*lines, *self.more]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def generate(config: GenerateConfig, progress: Progress | None = None) -> GenerateResult:
    """Explain ``config.split`` of a split with ``config.run``; write the predictions and their sidecar."""
    ensure_new_output(config.out, config.overwrite)
    # Under torchrun the ranks share the batches; rank 0 gathers the texts and alone writes the output.
    with process_group(config.device) as world:
        with output_lock(config.out) if world.is_main else contextlib.nullcontext():
            result = _generate_locked(config, progress if world.is_main else None, world)
        barrier(world)
    return result


def _generate_locked(config: GenerateConfig, progress: Progress | None, world: World) -> GenerateResult:
    history = read_history(config.history) if config.history is not None else []  # before minutes of loading
    if config.pairs is not None:
        return _generate_pairs(config, history, progress, world)
    device = rank_device(world, config.device)
    run = load_run(config.run, device, config.trust_remote_code)
    check_method(config.cold_start, run.model, config.run)
    plan = hint_plan(config, run)
    pairs = explained_pairs(config, run)
    dataset, data_path, split_number, numbers, total = (
        pairs.dataset, pairs.data_path, pairs.split_number, pairs.numbers, pairs.total
    )  # fmt: skip
    records = [dataset.records[n] for n in numbers]
    cold, applied, known_of_cold = _cold_start(
        config, run, dataset, pairs.own_data, pairs.known, records, history
    )
    inputs = prompt_inputs(
        run, dataset, split_number, numbers, data_path / "records.jsonl", entities=applied.entities,
        cold=(cold, known_of_cold if config.cold_start == "features" else None),
    )  # fmt: skip
    hints = with_hints(run, inputs, plan, dataset, dataset.splits[split_number][0], records)
    texts = decode_texts(
        run, inputs, device, DecodeOptions.from_config(config, run.max_tokens), progress, world
    )
    if config.clean_up_spaces:
        texts = [clean_up_spaces(text) for text in texts]
    ratings = predicted_ratings(run.model, inputs, device, config.batch_size)
    predictions = [
        Prediction(
            user=r.user,
            item=r.item,
            reference=r.text,
            generated=text.strip(),
            feature=r.feature,
            rating=float(r.rating),
            predicted_rating=ratings[k] if ratings is not None else None,
            cold=cold.mark(r.user, r.item),
            hint=hints[k] if hints is not None else None,
        )
        for k, (r, text) in enumerate(zip(records, texts))
    ]
    cold_pairs = sum(p.cold is not None for p in predictions)
    cold_ids = {"users": len(cold.users), "items": len(cold.items)}
    fell_back = {f"{kind}s": count for kind, count in applied.fell_back.items()}
    provenance = _provenance(config, run, data_path, dataset, split_number, len(predictions))
    provenance["predictions"]["skipped_unknown"] = total - len(numbers)
    provenance["predictions"]["cold"] = cold_pairs
    provenance["cold_start"] = _cold_start_record(config, cold_ids, fell_back, len(history))
    provenance["feature_hint"] = plan.record()

    _write(config.out, predictions, provenance, world)
    return GenerateResult(
        len(predictions),
        config.out,
        split_number,
        config.split,
        total - len(numbers),
        cold_pairs,
        cold_ids,
        fell_back,
        feature_hint_label({"feature_hint": plan.record()}),
    )


def _generate_pairs(
    config: GenerateConfig, history: list[HistoryLine], progress: Progress | None, world: World
) -> GenerateResult:
    """``generate --pairs``: the pairs of a file, in order, through :class:`~.explainer.Explainer`."""
    assert config.pairs is not None
    pairs_file = read_pairs(config.pairs)
    pairs = pairs_file.pairs[: config.limit] if config.limit else pairs_file.pairs
    device = rank_device(world, config.device)
    explainer = Explainer(config, load_run(config.run, device, config.trust_remote_code), device, history)
    options = DecodeOptions.from_config(config, explainer.run.max_tokens)
    explained = explainer.explain(pairs, options, pairs_file.where, progress, world)
    predictions = [
        Prediction(
            user=pair.user,
            item=pair.item,
            reference=pair.reference,
            generated=e.generated,
            feature=pair.feature,
            rating=pair.rating,
            predicted_rating=e.predicted_rating,
            cold=e.cold,
            hint=e.hint,
        )
        for pair, e in zip(pairs, explained.explanations)
        if e is not None
    ]
    if not predictions:
        raise PeplerError(
            f"{config.pairs}: every pair has an unknown user or item: nothing is left to explain"
        )
    run = explainer.run
    data = explainer.data
    provenance = _provenance(
        config, run, data.path, data.dataset, int(run.manifest["dataset"]["split"]), len(predictions)
    )
    provenance["dataset"]["split"] = (
        None  # no part of a split: the pairs of a file, explained by the run's split
    )
    provenance["pairs"] = {
        "path": str(config.pairs),
        "sha256": sha256_file(config.pairs),
        "count": len(pairs),
    }
    provenance["predictions"]["skipped_unknown"] = explained.skipped
    provenance["predictions"]["cold"] = sum(p.cold is not None for p in predictions)
    provenance["cold_start"] = _cold_start_record(
        config, explained.cold_ids, explained.fell_back, len(history)
    )
    hint = explainer.plan.record() if explainer.hinted else HintPlan("none").record()
    hint["from_pairs"] = sum(pair.feature is not None for pair in pairs)
    provenance["feature_hint"] = hint

    _write(config.out, predictions, provenance, world)
    return GenerateResult(
        len(predictions),
        config.out,
        int(run.manifest["dataset"]["split"]),
        "pairs",
        explained.skipped,
        provenance["predictions"]["cold"],
        explained.cold_ids,
        explained.fell_back,
        feature_hint_label({"feature_hint": hint}),
        _unhinted_features(explainer, pairs),
    )


def _unhinted_features(explainer: Explainer, pairs: list[Pair]) -> tuple[str, ...]:
    given = sum(pair.feature is not None for pair in pairs)
    if explainer.hinted or not given:
        return ()
    note = (
        f"{given} pairs give a feature: the run was trained without feature hints, so it is not in their prompts, "
        "only what FMR scores their explanations against"
    )
    return (note,)


@dataclass(frozen=True)
class ExplainedPairs:
    """The pairs a generation explains (``generate``, and ``probe`` alike): record numbers of a part of a split,
    and what the run knows."""

    dataset: PreparedDataset
    data_path: Path
    split_number: int
    numbers: list[int]  # after --unknown (with --cold-start error), in the part's order
    total: int  # before --unknown
    known: KnownIds
    own_data: bool  # the dataset is the one the run was trained on


def explained_pairs(config: GenerateConfig, run: LoadedRun) -> ExplainedPairs:
    data_path = Path(config.data or run.manifest["dataset"]["path"])
    dataset = load_prepared(data_path)
    split_number = config.split_number or int(run.manifest["dataset"]["split"])
    if split_number not in dataset.splits:
        raise PeplerError(f"{data_path}: has no split {split_number}", exit_code=2)
    numbers = dict(zip(SPLIT_PARTS, dataset.splits[split_number]))[config.split]
    numbers = numbers[: config.limit] if config.limit else numbers
    if not dataset.splits_checked:  # prepared by an older pepler: never checked
        # Overlap only: unseen ids are --unknown's business, and a part not explained may be empty.
        dataset.check_split(split_number, allow_unseen=True, allow_empty=True)
    total = len(numbers)
    known, own_data = known_ids(run, dataset)
    if config.cold_start == "error":  # the other methods give unknown users and items a vector
        numbers = _known_pairs(config, known, dataset, split_number, numbers, data_path)
    return ExplainedPairs(dataset, data_path, split_number, numbers, total, known, own_data)


def _known_pairs(
    config: GenerateConfig,
    known: KnownIds,
    dataset: PreparedDataset,
    split_number: int,
    numbers: list[int],
    data_path: Path,
) -> list[int]:
    """The record numbers whose user and item the run has trained (``known``); the others are an error, or
    with ``--unknown skip`` left out."""
    records = dataset.records
    return keep_known_pairs(
        numbers,
        [records[n].user for n in numbers],
        [records[n].item for n in numbers],
        known,
        unknown=config.unknown,
        where=config.run,
        what=f"{config.split} pairs of {data_path} (split {split_number})",
        purpose="explain",
    )


def _cold_start(
    config: GenerateConfig,
    run: LoadedRun,
    dataset: PreparedDataset,
    own_data: bool,
    known: KnownIds,
    records: list[Record],
    history: list[HistoryLine],
) -> tuple[ColdIds, Applied, dict[ColdKind, dict[str, Counter[str]]]]:
    """The cold users and items of ``records``, what ``--cold-start`` gave them (in ``run.model``), and what the
    history knows of each user and item."""
    trained = _run_training(config, run, dataset, own_data)
    run_split = int(run.manifest["dataset"]["split"])
    cold = find_cold(
        [r.user for r in records],
        [r.item for r in records],
        known.users,
        known.items,
        dataset.cold_splits.get(run_split) if own_data else None,
        trained,
    )
    known_of_cold = history_features(history, dataset.features)
    applied = apply_cold_start(
        config.cold_start, run.model, run.entities, run.tokenizer, cold, trained, known_of_cold
    )
    return cold, applied, known_of_cold


def _run_training(
    config: GenerateConfig, run: LoadedRun, dataset: PreparedDataset, own_data: bool
) -> Trained | None:
    """The training part of the run's split, as :mod:`~pepler_cli.generation.cold_start` reads it: needed by
    every ``--cold-start`` but error, and to mark the cold pairs of a cold-start split (on the run's own data).
    Explaining another dataset, the run's own is read from where its manifest says it was."""
    run_split = int(run.manifest["dataset"]["split"])
    if own_data:
        if config.cold_start == "error" and run_split not in dataset.cold_splits:
            return None  # nothing needs it: today's generate, at today's cost
        return Trained.of(dataset.records, dataset.splits[run_split][0])
    if config.cold_start == "error":
        return None
    path = run.manifest["dataset"].get("path")
    why = f"{config.run}: --cold-start {config.cold_start} needs the dataset the run was trained on"
    try:
        theirs = load_prepared(Path(path))
    except PeplerError as error:
        raise PeplerError(f"{why}: {error.message}") from None
    if theirs.fingerprint != run.manifest["dataset"].get("fingerprint") or run_split not in theirs.splits:
        raise PeplerError(f"{why}: {path} now holds other data (its fingerprint differs)")
    return Trained.of(theirs.records, theirs.splits[run_split][0])


def _cold_start_record(
    config: GenerateConfig, cold_ids: dict[str, int], fell_back: dict[str, int], history_lines: int
) -> dict[str, Any]:
    """The sidecar's ``cold_start``: the method, the cold users and items, and what fell back to the mean."""
    record: dict[str, Any] = {"method": config.cold_start, **cold_ids}
    if config.cold_start in ("neighbours", "features"):
        record["mean_fallback"] = fell_back
    if config.history is not None:
        record["history"] = {
            "path": str(config.history),
            "sha256": sha256_file(config.history),
            "lines": history_lines,
        }
    return record


def prompt_inputs(
    run: LoadedRun,
    dataset: PreparedDataset,
    split_number: int,
    numbers: list[int],
    source: Path,
    *,
    entities: EntityIndex | None = None,
    cold: tuple[ColdIds, Mapping[ColdKind, Mapping[str, Counter[str]]] | None] = (ColdIds(), None),
) -> PromptInputs:
    """Every example's prompt, on the host: ids for a continuous prompt (rows of ``entities``, by default the
    run's), feature tokens for a discrete one; ``cold`` holds the cold ids and, with ``--cold-start features``,
    what the history knows of them."""
    entities = entities if entities is not None else run.entities
    records: list[Record] = [dataset.records[n] for n in numbers]
    users = [entities.user_row(r.user, f"{source} record {n}") for n, r in zip(numbers, records)]
    items = [entities.item_row(r.item, f"{source} record {n}") for n, r in zip(numbers, records)]
    inputs = PromptInputs(torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long))
    if run.model.prompt_kind == "discrete" and records:
        # Features come from the training part of the split only, as when the run was trained.
        features = FeatureIndex.from_training(dataset.records, dataset.splits[split_number][0])
        cold_ids, history = cold
        if history is not None:
            features = with_history(features, cold_ids, history)
        prompt_ids = discrete_prompt_ids(records, run.tokenizer, features)
        inputs.prompt_tokens, inputs.prompt_mask = pad_left(prompt_ids, run.special.pad)
    return inputs


def with_hints(
    run: LoadedRun,
    inputs: PromptInputs,
    plan: HintPlan,
    dataset: PreparedDataset,
    train_numbers: list[int],
    records: list[Record],
) -> list[str] | None:
    """Put ``plan``'s feature hints into ``inputs`` (generation/hints.py); returns each record's hint, or None
    without hints."""
    features = hint_features(plan, run, dataset, train_numbers, records, inputs)
    if features is not None and records:
        inputs.hint_tokens, inputs.hint_mask = pad_left(hint_ids(features, run.tokenizer), run.special.pad)
    return features


def _write(out: Path, predictions: list[Prediction], provenance: dict[str, Any], world: World) -> None:
    """Rank 0 writes the predictions and their sidecar (with their sha256). The sidecar is written before the
    predictions are renamed into place: a failure leaves neither."""

    def sidecar(sha256: str) -> dict[str, Any]:
        provenance["predictions"]["sha256"] = sha256
        return provenance

    if world.is_main:
        write_predictions(out, predictions, sidecar)


def _provenance(
    config: GenerateConfig,
    run: LoadedRun,
    data_path: Path | None,
    dataset: PreparedDataset | None,
    split_number: int,
    count: int,
) -> dict[str, Any]:
    """What the sidecar records beside its format: which run, dataset, split and decoding made them."""
    run_config = run.manifest.get("config", {})
    return {
        "command": shlex.join(["pepler", *sys.argv[1:]]),
        "config": saved_options(config),
        "run": {
            "path": str(Path(run.path).resolve()),
            "name": run.manifest.get("name"),
            "model": run.model_name,
            **{key: run_config.get(key) for key in ("prompt", "strategy", "rating_head", "backbone")},
        },
        "dataset": {
            "path": str(data_path) if data_path is not None else None,
            "fingerprint": dataset.fingerprint if dataset is not None else None,
            "split_number": split_number,
            "split": config.split,
        },
        "predictions": {"path": str(config.out), "count": count, "sha256": None},  # set as it is written
    }
