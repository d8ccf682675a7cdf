"""``pepler train`` as a library call: dataset → model → stages → run directory."""

from __future__ import annotations

import contextlib
import functools
import platform
import random
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import pepler_cli
from pepler_cli.config import TrainConfig, saved_options
from pepler_cli.data.feature_prompts import FeatureIndex
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import PreparedDataset
from pepler_cli.devices import use_bf16
from pepler_cli.distributed import World, barrier, current_world, process_group, rank_device
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_directory, ensure_new_output, output_lock
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.plugins import ExplanationModel, ModelPlugin, TrainingSetup, get_model, registry
from pepler_cli.run_model import write_run_files
from pepler_cli.runs import RUN_FORMAT
from pepler_cli.strategies import Stage
from pepler_cli.training.checkpoint import (
    Resumed,
    checkpoint_dir,
    is_checkpoint,
    load_checkpoint,
    remove_checkpoint,
    restore_model,
    restore_rng,
    save_checkpoint,
)
from pepler_cli.training.examples import Examples, encode_examples
from pepler_cli.training.loop import (
    Checkpointing,
    LoopOptions,
    NonFiniteLoss,
    Reporter,
    SilentReporter,
    StageProgress,
    StageRecord,
    StopRequested,
    train_stage,
)
from pepler_cli.training.scalars import LoggingReporter, ScalarSink, logs_dir, move_logs, open_sink
from pepler_cli.training.steps import is_sharded, whole
from pepler_cli.training.token_cache import explanation_token_ids


def train(
    config: TrainConfig, command: str | None = None, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Train and write the run directory ``config.out``; returns its manifest.

    ``command`` is recorded in the manifest (default: this process's command line); ``reporter`` receives
    progress (default: none).
    """
    # Checked before hours of training, not after: never lose a finished run.
    ensure_new_output(config.out, config.overwrite)
    command = command if command is not None else shlex.join(["pepler", *sys.argv[1:]])
    # Under torchrun every rank trains; rank 0 alone locks and writes the output, checkpoints and progress.
    checkpoint = checkpoint_dir(config.out)
    had_checkpoint = checkpoint.exists()
    with process_group(config.device) as world:
        try:
            with output_lock(config.out) if world.is_main else contextlib.nullcontext():
                manifest = _train_locked(config, command, reporter if world.is_main else None, world)
        except PeplerError as error:
            _drop_logs_without_checkpoint(config, world)
            if had_checkpoint or not is_checkpoint(checkpoint) or str(checkpoint) in error.message:
                raise
            # Training got somewhere before failing (a full disk as the run was written, say): keep it usable.
            raise PeplerError(
                f"{error.message}; the training done so far is kept in {checkpoint}: run the same command "
                "with --resume to continue",
                error.exit_code,
            ) from None
        except BaseException:
            _drop_logs_without_checkpoint(config, world)
            raise
        barrier(world)  # every rank returns once the run is written
    return manifest


def _train_locked(
    config: TrainConfig, command: str, reporter: Reporter | None, world: World
) -> dict[str, Any]:
    reporter = reporter if reporter is not None else SilentReporter()
    started = time.perf_counter()
    plugin = get_model(config.model)
    config = plugin.resolve(config)
    dataset = load_prepared(config.data)
    train_numbers, valid_numbers = _training_parts(config, dataset)
    split_check = _check_split(config, dataset)
    device = rank_device(world, config.device)
    bf16 = use_bf16(config.precision, device)

    entities = EntityIndex.from_records(dataset.records)
    setup = TrainingSetup(config, dataset, entities, train_numbers, valid_numbers, world)
    built = plugin.build(setup)  # seeds the global generator
    model, tokenizer, special = built.model, built.tokenizer, built.special
    checkpoint = checkpoint_dir(config.out)
    resumed = _resume_point(config, checkpoint, dataset.manifest.get("fingerprint"))
    if resumed is not None:
        restore_model(model, resumed.model_state)
        restore_rng(resumed.rng)
        if resumed.current.position is not None and not world.is_main:
            resumed.current.position.loss_sum.zero_()  # the saved sum is the whole job's: rank 0 carries it
    model.to(device)

    source = str(Path(config.data) / "records.jsonl")
    features = (
        FeatureIndex.from_training(dataset.records, train_numbers)
        if model.prompt_kind == "discrete"
        else None
    )
    token_ids = explanation_token_ids(dataset, tokenizer)
    hints = config.feature_hint != "none"
    train, valid = (
        encode_examples(
            dataset.records,
            numbers,
            tokenizer,
            entities,
            source,
            features,
            token_ids,
            special=special,
            hints=hints,
            max_tokens=built.max_tokens,
        )
        for numbers in (train_numbers, valid_numbers)
    )
    if not len(train) or not len(valid):
        raise PeplerError(f"{config.data}: split {config.split} has an empty train or validation part")
    assert config.learning_rate is not None  # filled in by TrainConfig or the model plugin
    options = LoopOptions(
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        max_epochs=config.epochs,
        patience=config.patience,
        rating_weight=config.rating_weight if model.predicts_ratings else 0.0,
        seed=config.seed,
        device=device,
        bf16=bf16,
        pad_id=special.pad,
        bucket_by_length=config.bucket_by_length,
        grad_accum=config.grad_accum,
        world=world,
        fsdp=config.fsdp and world.distributed,
    )
    stages = plugin.stages(config)
    sink = _scalar_sink(config, world, resumed)
    if sink is not None:
        done = [*(resumed.finished if resumed else []), *([resumed.current.record] if resumed else [])]
        reporter = LoggingReporter(reporter, sink, epochs_before=sum(len(r.epochs) for r in done))
    with stop_on_signals() as stop_requested, contextlib.closing(sink) if sink else contextlib.nullcontext():
        try:
            records = _train_stages(
                config, dataset, model, stages, train, valid, options, reporter, checkpoint, resumed,
                stop_requested,
            )  # fmt: skip
        except StopRequested as stop:
            raise PeplerError(
                f"{stop.reason}: training stopped in stage {stop.stage}, epoch {stop.epoch}"
                + (f" after step {stop.step}" if stop.step else "")
                + f"; checkpoint saved in {checkpoint}; continue with: {_resume_command(command)}",
                exit_code=128 + signal.Signals[stop.reason].value,
            ) from None
        except NonFiniteLoss as bad:
            kept = (
                f"the last good checkpoint is kept in {checkpoint}"
                if is_checkpoint(checkpoint)
                else ("no checkpoint was saved yet")
            )
            raise PeplerError(
                f"{bad}: training stopped and no run was written; {kept}; try a lower --learning-rate or "
                "--precision fp32"
            ) from None
    if is_sharded(model):  # FSDP: every rank gathers the whole model, which rank 0 then writes
        built.model = model = _whole_model(model, plugin, setup)
    if resumed is not None:
        started -= resumed.seconds  # the manifest's training time includes the interrupted part
    manifest = _manifest(config, command, dataset, records, device, bf16, len(train), len(valid), started)
    extra = dict(built.manifest or {})
    manifest["model"] = {
        "name": config.model,
        "users": len(entities.users),
        "items": len(entities.items),
        "parameters": sum(p.numel() for p in model.parameters()),
        "explanation_start": special.start,  # modeling/special_tokens.py: what every explanation follows
        **({"max_tokens": built.max_tokens} if built.max_tokens is not None else {}),
        **extra.pop("model", {}),
    }
    manifest.update(extra)
    manifest["dataset"].update(split_check)
    manifest["distributed"] = _layout(config, world, device)
    if not world.is_main:
        return manifest
    with atomic_directory(config.out, overwrite=config.overwrite) as directory:
        move_logs(config.out, directory)
        manifest = write_run_files(directory, plugin, built, setup, manifest)
    remove_checkpoint(checkpoint)  # only now: the finished run holds everything it had
    shutil.rmtree(logs_dir(config.out), ignore_errors=True)
    return manifest


def _drop_logs_without_checkpoint(config: TrainConfig, world: World) -> None:
    # A failed training leaves its log only beside a checkpoint that a resume would continue.
    if world.is_main and not is_checkpoint(checkpoint_dir(config.out)):
        shutil.rmtree(logs_dir(config.out), ignore_errors=True)


def _scalar_sink(config: TrainConfig, world: World, resumed: Resumed | None) -> ScalarSink | None:
    """Rank 0's scalar log (``--logger``); a run that starts afresh starts a fresh log."""
    if not world.is_main:
        return None
    if resumed is None:
        shutil.rmtree(logs_dir(config.out), ignore_errors=True)
    return open_sink(config.logger, logs_dir(config.out))


def _layout(config: TrainConfig, world: World, device: torch.device) -> dict[str, Any]:
    """How each optimizer step's global batch of ``batch_size`` examples was spread: over ranks, then
    micro-batches (gradient accumulation)."""
    per_rank = -(-config.batch_size // world.size)
    return {
        "world_size": world.size,
        "per_rank_batch": per_rank,
        "grad_accum": config.grad_accum,
        "micro_batch": -(-per_rank // config.grad_accum),
        "backend": ("nccl" if device.type == "cuda" else "gloo") if world.distributed else None,
        "fsdp": config.fsdp and world.distributed,
    }


def _training_parts(config: TrainConfig, dataset: PreparedDataset) -> tuple[list[int], list[int]]:
    """The record numbers to train and validate on; ``max_train_examples`` keeps a seeded random subset."""
    if config.split not in dataset.splits:
        raise PeplerError(f"{config.data}: has no split {config.split}", exit_code=2)
    train_numbers, valid_numbers, _ = dataset.splits[config.split]
    if config.max_train_examples is not None and config.max_train_examples < len(train_numbers):
        train_numbers = sorted(random.Random(config.seed).sample(train_numbers, config.max_train_examples))
    return train_numbers, valid_numbers


def _check_split(config: TrainConfig, dataset: PreparedDataset) -> dict[str, Any]:
    """Check the split trained on (prepare checks every split, but datasets of older peplers were never
    checked); what the run's manifest records of it under ``dataset``. ``prepare --allow-unseen``, recorded in
    the dataset's manifest, is an opt-in as good as ``train --allow-unseen``."""
    allow = config.allow_unseen or dataset.unseen_allowed
    counts = dataset.check_split(config.split, allow_unseen=allow)
    unseen = {part: found for part, found in counts.items() if any(found.values())}
    return {"split_checked": True, "allow_unseen": allow, **({"unseen": unseen} if unseen else {})}


def _whole_model(sharded: Any, plugin: ModelPlugin, setup: TrainingSetup) -> ExplanationModel:
    """An unsharded copy of an FSDP-trained model (a collective: every rank gathers every tensor, in order)."""
    state = {name: whole(tensor).detach().cpu() for name, tensor in sharded.state_dict().items()}
    model = plugin.build(setup).model
    model.load_state_dict(state)
    return model  # on the host: rank 0 writes it from there


def _resume_command(command: str) -> str:
    return command if "--resume" in shlex.split(command) else f"{command} --resume"


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], str | None]]:
    """While training, SIGTERM (what schedulers send before pre-emption) and SIGINT only ask it to stop:
    the loop saves a checkpoint at the next step boundary and stops. A second Ctrl-C stops at once.

    Yields a function naming the first signal received (None before any). Outside the main thread, where
    Python cannot install handlers, signals keep their usual effect.
    """
    received: list[str] = []

    def ask_to_stop(signum: int, frame: Any) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _resume_point(config: TrainConfig, checkpoint: Path, fingerprint: str | None) -> Resumed | None:
    """The checkpoint to continue from, None to start afresh, or an error when one is there unasked."""
    if checkpoint.exists() and not is_checkpoint(checkpoint):
        remove_checkpoint(checkpoint)  # killed before its first checkpoint was complete: nothing to continue
    if not checkpoint.exists():
        return None
    if config.resume:
        return load_checkpoint(checkpoint, config, fingerprint)
    if config.overwrite:
        remove_checkpoint(checkpoint)
        return None
    raise PeplerError(
        f"{checkpoint}: an interrupted run's checkpoint is there; pass --resume to continue it or --overwrite "
        "to discard it and start over"
    )


def _train_stages(
    config: TrainConfig,
    dataset: Any,
    model: ExplanationModel,
    stages: tuple[Stage, ...],
    train: Examples,
    valid: Examples,
    options: LoopOptions,
    reporter: Reporter,
    checkpoint: Path,
    resumed: Resumed | None,
    stop_requested: Callable[[], str | None],
) -> list[StageRecord]:
    """Every stage in turn, skipping those a checkpoint finished, saving a checkpoint after each epoch."""
    started = time.perf_counter() - (resumed.seconds if resumed else 0.0)
    finished: list[StageRecord] = list(resumed.finished) if resumed else []
    fingerprint = dataset.manifest.get("fingerprint")
    for index, stage in enumerate(stages):
        if index < len(finished):
            continue
        trained_so_far = {group for s in stages[: index + 1] for group in s.trains}
        save = functools.partial(
            _save_checkpoint, checkpoint, config, fingerprint, model, trained_so_far, finished, started
        )
        resume, moments = None, None
        if resumed is not None and index == len(resumed.finished):
            resume, moments = resumed.current, resumed.optimizer_state
        checkpointing = Checkpointing(save, config.checkpoint_every or 0, stop_requested)
        finished.append(
            train_stage(model, stage, train, valid, options, reporter, resume, moments, checkpointing)
        )
    return finished


def _save_checkpoint(
    checkpoint: Path,
    config: TrainConfig,
    fingerprint: str | None,
    model: ExplanationModel,
    groups_trained: set[str],
    finished: list[StageRecord],
    started: float,
    progress: StageProgress,
    optimizer: torch.optim.Optimizer,
) -> None:
    main = current_world().is_main  # rank 0 writes; the others help gather a sharded model
    seconds = time.perf_counter() - started
    try:
        save_checkpoint(
            checkpoint,
            config,
            fingerprint,
            model,
            groups_trained,
            finished,
            progress,
            optimizer,
            seconds,
            main,
        )
    except OSError as error:  # a full disk, say: the last complete checkpoint is still there, if any
        if not is_checkpoint(checkpoint):
            remove_checkpoint(checkpoint)
        raise PeplerError(f"{checkpoint}: cannot write ({error.strerror or error})") from None


def _manifest(
    config: TrainConfig,
    command: str,
    dataset: Any,
    stages: list[StageRecord],
    device: torch.device,
    bf16: bool,
    train_size: int,
    valid_size: int,
    started: float,
) -> dict[str, Any]:
    plugins = {"model": registry.version_of("model", config.model)}
    if config.backbone:
        plugins["backbone"] = registry.version_of("backbone", config.backbone)
    if config.rating_head:
        plugins["rating_head"] = registry.version_of("rating_head", config.rating_head)
    return {
        "format": RUN_FORMAT,
        "name": Path(config.out).name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": saved_options(config),
        "versions": {
            "pepler": pepler_cli.__version__,
            "python": platform.python_version(),
            "torch": str(torch.__version__),  # a TorchVersion, which YAML cannot represent
            "transformers": _version("transformers"),
        },
        "plugins": plugins,
        "dataset": {
            "path": str(config.data),
            "name": dataset.manifest.get("name"),
            "fingerprint": dataset.manifest.get("fingerprint"),
            "split": config.split,
            "train_examples": train_size,
            "validation_examples": valid_size,
        },
        "device": {"type": device.type, "bf16": bf16, "precision": "bf16" if bf16 else "fp32"},
        "stages": [_stage_dict(s) for s in stages],
        "training_seconds": round(time.perf_counter() - started, 1),
    }


def _stage_dict(stage: StageRecord) -> dict[str, Any]:
    return {
        "name": stage.name,
        "trains": stage.trains,
        "best_epoch": stage.best_epoch,
        "best_valid_loss": stage.best_valid_loss,
        "stopped": stage.stopped,
        "epochs": [{k: _round(v) for k, v in asdict(e).items()} for e in stage.epochs],
    }


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _version(package: str) -> str:
    return metadata.version(package)
