"""``pepler generate`` as a library call: a finished run explains one part of a split into preds.jsonl."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pepler_cli.config import GenerateConfig, saved_options
from pepler_cli.data.feature_prompts import FeatureIndex, discrete_prompt_ids
from pepler_cli.data.prepared.layout import SPLIT_PARTS
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import PreparedDataset, Record
from pepler_cli.data.splits import KnownIds, keep_known_pairs
from pepler_cli.distributed import World, barrier, gather_objects, process_group, rank_device
from pepler_cli.errors import PeplerError
from pepler_cli.files import ensure_new_output, output_lock
from pepler_cli.generation.decode import DecodeOptions, decode_in_batches
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.special_tokens import special_tokens
from pepler_cli.predictions import Prediction, write_predictions
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
    device = rank_device(world, config.device)
    run = load_run(config.run, device, config.trust_remote_code)
    data_path = config.data or Path(run.manifest["dataset"]["path"])
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
    numbers = _known_pairs(config, run, dataset, split_number, numbers, data_path)
    records = [dataset.records[n] for n in numbers]
    inputs = _prompt_inputs(run, dataset, split_number, numbers, Path(data_path) / "records.jsonl")
    texts = _decode(run, inputs, device, DecodeOptions.from_config(config), progress, world)
    if config.clean_up_spaces:
        texts = [clean_up_spaces(text) for text in texts]
    ratings = _predicted_ratings(run.model, inputs, device, config.batch_size)
    predictions = [
        Prediction(
            user=r.user,
            item=r.item,
            reference=r.text,
            generated=text.strip(),
            feature=r.feature,
            rating=float(r.rating),
            predicted_rating=ratings[k] if ratings is not None else None,
        )
        for k, (r, text) in enumerate(zip(records, texts))
    ]
    provenance = _provenance(config, run, data_path, dataset, split_number, len(predictions))
    provenance["predictions"]["skipped_unknown"] = total - len(numbers)

    def sidecar(sha256: str) -> dict[str, Any]:
        provenance["predictions"]["sha256"] = sha256
        return provenance

    # The sidecar is written before the predictions are renamed into place: a failure leaves neither.
    if world.is_main:
        write_predictions(config.out, predictions, sidecar)
    return GenerateResult(len(predictions), config.out, split_number, config.split, total - len(numbers))


def _known_pairs(
    config: GenerateConfig,
    run: LoadedRun,
    dataset: PreparedDataset,
    split_number: int,
    numbers: list[int],
    data_path: Path,
) -> list[int]:
    """The record numbers whose user and item the run has trained; the others are an error, or with
    ``--unknown skip`` left out.

    On the run's own dataset (same fingerprint), trained means: in the training part of the split the run was
    trained on; an id with a vector that training never touched (``train --allow-unseen``) counts as unknown.
    On another dataset, all that is known is which ids have a vector in the run (users.txt, items.txt).
    """
    trained_on = run.manifest.get("dataset") or {}
    run_split = trained_on.get("split")
    if (
        dataset.fingerprint
        and dataset.fingerprint == trained_on.get("fingerprint")
        and run_split in dataset.splits
    ):
        users, items = dataset.training_ids(run_split)
        known = KnownIds(users, items, f"the run never saw in training (split {run_split}, train)")
    else:
        no_vector = "that the run has no vector for (it was trained on another dataset)"
        known = KnownIds(set(run.entities.users), set(run.entities.items), no_vector)
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


def _decode(
    run: LoadedRun,
    inputs: PromptInputs,
    device: torch.device,
    options: DecodeOptions,
    progress: Progress | None,
    world: World,
) -> list[str]:
    """Every example's text in order; under torchrun each rank decodes its batches and all gather them."""
    special = special_tokens(run.tokenizer)
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


def _prompt_inputs(
    run: LoadedRun, dataset: PreparedDataset, split_number: int, numbers: list[int], source: Path
) -> PromptInputs:
    """Every example's prompt, on the host: ids for a continuous prompt, feature tokens for a discrete one."""
    records: list[Record] = [dataset.records[n] for n in numbers]
    users = [run.entities.user_row(r.user, f"{source} record {n}") for n, r in zip(numbers, records)]
    items = [run.entities.item_row(r.item, f"{source} record {n}") for n, r in zip(numbers, records)]
    inputs = PromptInputs(torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long))
    if run.model.prompt_kind == "discrete" and records:
        # Features come from the training part of the split only, as when the run was trained.
        features = FeatureIndex.from_training(dataset.records, dataset.splits[split_number][0])
        prompt_ids = discrete_prompt_ids(records, run.tokenizer, features)
        inputs.prompt_tokens, inputs.prompt_mask = pad_left(prompt_ids, special_tokens(run.tokenizer).pad)
    return inputs


@torch.no_grad()
def _predicted_ratings(
    model: PromptModel, inputs: PromptInputs, device: torch.device, batch_size: int
) -> list[float] | None:
    if model.rating_head is None:
        return None
    out: list[float] = []
    for start in range(0, int(inputs.users.shape[0]), batch_size):
        users = inputs.users[start : start + batch_size].to(device)
        items = inputs.items[start : start + batch_size].to(device)
        predicted = model.predict_ratings(users, items)
        assert predicted is not None  # a model with a rating head predicts ratings
        out.extend(predicted.float().cpu().tolist())
    return out


def _provenance(
    config: GenerateConfig,
    run: LoadedRun,
    data_path: Path,
    dataset: PreparedDataset,
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
            **{key: run_config.get(key) for key in ("prompt", "strategy", "rating_head", "backbone")},
        },
        "dataset": {
            "path": str(data_path),
            "fingerprint": dataset.fingerprint,
            "split_number": split_number,
            "split": config.split,
        },
        "predictions": {"path": str(config.out), "count": count, "sha256": None},  # set as it is written
    }
