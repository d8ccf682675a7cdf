"""A resumable checkpoint, rewritten after every epoch (and every N steps) beside the run it will become.

``<out>.checkpoint/`` (``runs/pepler`` → ``runs/pepler.checkpoint``) holds:

- ``checkpoint.yaml``: its format, the options that shape training (so a resume with other options is refused),
  the dataset's fingerprint, the seconds trained so far, the sha256 of the state file, and where training
  stands: the finished stages' records, the current stage's epochs, best loss and epochs without improvement,
  and — when saved inside an epoch — that epoch's position (batches done);
- ``state-<n>.safetensors``: the parameter groups trained so far (the LM's only once a stage has tuned it: a
  frozen backbone is rebuilt from its plugin, not copied), the current stage's best weights, the optimizer's
  moments, the random number generators' states and an unfinished epoch's loss sum, so a resumed run
  continues exactly where it stopped, with the next batch.

A save writes a new state file first and then replaces ``checkpoint.yaml``, which names it and holds its
sha256: that rename is the moment the new checkpoint counts, so a process killed at any instant leaves the
previous checkpoint or the new one, whole. Older state files are removed afterwards. A directory without
``checkpoint.yaml`` is not a checkpoint. A finished run removes the directory. No pickles.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from pepler_cli.config import TrainConfig, saved_options
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_file, read_yaml_mapping, sha256_file, yaml_text
from pepler_cli.plugins import ExplanationModel
from pepler_cli.training.loop import EpochPosition, EpochRecord, StageProgress, StageRecord
from pepler_cli.training.steps import is_sharded, whole

CHECKPOINT_FORMAT = "pepler-checkpoint/2"
STATE_PREFIX, STATE_SUFFIX = "state-", ".safetensors"
PROGRESS_FILE = "checkpoint.yaml"
# Options that may differ on resume: where the run goes, what to do with old outputs, and the hardware.
FREE_OPTIONS = (
    "out",
    "overwrite",
    "resume",
    "device",
    "precision",
    "checkpoint_every",
    "grad_accum",
    "fsdp",
    "logger",
)


def checkpoint_dir(out: Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


@dataclass
class Resumed:
    """A checkpoint read back: the model's saved tensors and where training stood."""

    finished: list[StageRecord]
    current: StageProgress  # the stage being trained when it was saved (possibly just ended)
    optimizer_state: dict[int, dict[str, torch.Tensor]]
    model_state: dict[str, torch.Tensor]
    rng: dict[str, torch.Tensor]
    seconds: float


def training_options(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in saved_options(config).items() if k not in FREE_OPTIONS}


def save_checkpoint(
    directory: Path,
    config: TrainConfig,
    fingerprint: str | None,
    model: ExplanationModel,
    groups_trained: set[str],
    finished: list[StageRecord],
    current: StageProgress,
    optimizer: torch.optim.Optimizer,
    seconds: float,
    write: bool = True,
) -> None:
    """Write the checkpoint; ``current`` is the stage being trained (its optimizer given).

    Under torchrun every rank calls this and rank 0 alone writes (``write``): a sharded (FSDP) model's tensors
    are gathered whole first, which takes every rank.
    """
    if not write and not is_sharded(model):
        return
    tensors: dict[str, torch.Tensor] = {}
    for name, parameter in _parameters_in(model, groups_trained).items():
        tensors[f"model/{name}"] = whole(parameter)
    # After an improving epoch the best weights are the current ones: saved once, not twice. Inside an epoch
    # the weights have moved on since.
    best_is_current = current.position is None and current.record.best_epoch == len(current.record.epochs)
    if not best_is_current:
        for index, tensor in enumerate(current.best_state or []):
            tensors[f"best/{index}"] = whole(tensor)
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optimizer/{index}/{key}"] = whole(torch.as_tensor(value))
    if not write:
        return
    if current.position is not None:
        tensors["position/loss_sum"] = current.position.loss_sum
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{index}"] = state
    progress = {
        "format": CHECKPOINT_FORMAT,
        "training_options": training_options(config),
        "dataset_fingerprint": fingerprint,
        "seconds": round(seconds, 3),
        "finished_stages": [_record_dict(r) for r in finished],
        "current_stage": {
            **_record_dict(current.record),
            "epochs_without_improvement": current.epochs_without_improvement,
            "best_is_current": best_is_current,
            "position": _position_dict(current.position),
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    state = _new_state_path(directory)
    with atomic_file(state, "wb") as handle:
        cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        handle.write(save(cpu, metadata={"format": CHECKPOINT_FORMAT}))
        _flush_to_disk(handle)
    progress["state_file"] = state.name
    progress["state_sha256"] = sha256_file(state)
    with atomic_file(directory / PROGRESS_FILE) as handle:  # the commit point
        handle.write(yaml_text(progress))
        _flush_to_disk(handle)
    for old in directory.glob(f"{STATE_PREFIX}*{STATE_SUFFIX}"):
        if old != state:
            old.unlink(missing_ok=True)


def _new_state_path(directory: Path) -> Path:
    numbers = [int(p.name[len(STATE_PREFIX) : -len(STATE_SUFFIX)] or 0) for p in _state_files(directory)]
    return directory / f"{STATE_PREFIX}{max(numbers, default=0) + 1}{STATE_SUFFIX}"


def _state_files(directory: Path) -> list[Path]:
    pattern = re.compile(rf"^{STATE_PREFIX}\d+{re.escape(STATE_SUFFIX)}$")
    return [p for p in directory.iterdir() if pattern.match(p.name)]


def _flush_to_disk(handle: Any) -> None:
    # A checkpoint outlives the process by design: make it outlive a power cut too.
    handle.flush()
    os.fsync(handle.fileno())


def is_checkpoint(directory: Path) -> bool:
    """Whether a complete checkpoint is there (a directory without ``checkpoint.yaml`` is not one)."""
    return (Path(directory) / PROGRESS_FILE).is_file()


def load_checkpoint(directory: Path, config: TrainConfig, fingerprint: str | None) -> Resumed:
    """Read a checkpoint made with the same training options on the same dataset, or explain why not."""
    progress_path = directory / PROGRESS_FILE
    try:
        progress = read_yaml_mapping(progress_path, "checkpoint file")
    except PeplerError as error:
        raise PeplerError(f"{error.message}; damaged checkpoint, pass --overwrite to start over") from None
    if progress.get("format") != CHECKPOINT_FORMAT:
        raise PeplerError(
            f"{progress_path}: not a {CHECKPOINT_FORMAT} checkpoint; pass --overwrite to start over"
        )
    state_name = str(progress.get("state_file", ""))
    if Path(state_name).name != state_name or not state_name.startswith(STATE_PREFIX):
        raise PeplerError(f"{progress_path}: field 'state_file' is not a state file name; damaged checkpoint")
    state_path = directory / state_name
    try:
        # Checked before reading: a truncated or altered file is named, never half-loaded.
        if sha256_file(state_path) != progress.get("state_sha256"):
            raise PeplerError(
                f"{state_path}: sha256 differs from {PROGRESS_FILE}; damaged checkpoint, pass --overwrite to "
                "start over"
            )
        tensors = load_file(str(state_path))
    except (SafetensorError, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise PeplerError(
            f"{state_path}: damaged checkpoint ({reason}); pass --overwrite to start over"
        ) from None
    _check_same_options(progress_path, progress.get("training_options") or {}, training_options(config))
    if progress.get("dataset_fingerprint") != fingerprint:
        raise PeplerError(
            f"{progress_path}: was made on another version of {config.data} (fingerprint differs); "
            "pass --overwrite to start over"
        )
    try:
        return _resumed(progress, tensors)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PeplerError(
            f"{progress_path}: damaged checkpoint (field {error}); pass --overwrite to start over"
        ) from None


def _resumed(progress: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Resumed:
    finished = [_record_from(d) for d in progress["finished_stages"]]
    current_dict = progress["current_stage"]
    best = None  # best_is_current: the stage takes the restored weights as its best
    if not current_dict.get("best_is_current"):
        best = [tensors[f"best/{i}"] for i in range(sum(k.startswith("best/") for k in tensors))]
    current = StageProgress(
        _record_from(current_dict),
        int(current_dict["epochs_without_improvement"]),
        best,
        _position_from(current_dict.get("position"), tensors),
    )
    optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            optimizer_state.setdefault(int(index), {})[name] = value
    return Resumed(
        finished=finished,
        current=current,
        optimizer_state=optimizer_state,
        model_state={k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")},
        rng={k: v for k, v in tensors.items() if k.startswith("rng/")},
        seconds=float(progress.get("seconds", 0.0)),
    )


def restore_model(model: ExplanationModel, state: dict[str, torch.Tensor]) -> None:
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            if name not in parameters or parameters[name].shape != tensor.shape:
                raise PeplerError(
                    f"checkpoint: parameter {name} does not fit this model; pass --overwrite to start over"
                )
            parameters[name].copy_(tensor)


def restore_rng(rng: dict[str, torch.Tensor]) -> None:
    """Dropout continues with the random numbers it would have drawn had training not stopped."""
    if "rng/cpu" in rng:
        torch.set_rng_state(rng["rng/cpu"])
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            if f"rng/cuda/{index}" in rng:
                torch.cuda.set_rng_state(rng[f"rng/cuda/{index}"], index)


def remove_checkpoint(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _parameters_in(model: ExplanationModel, groups: set[str]) -> dict[str, torch.nn.Parameter]:
    wanted = {id(p) for group, params in model.parameter_groups().items() if group in groups for p in params}
    return {name: p for name, p in model.named_parameters() if id(p) in wanted}


def _check_same_options(path: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    differing = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if differing:
        shown = "; ".join(f"{k}: {saved.get(k)!r} then, {now.get(k)!r} now" for k in differing)
        raise PeplerError(
            f"{path}: made with other training options ({shown}); resume with the same options or pass "
            "--overwrite to start over"
        )


def _position_dict(position: EpochPosition | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "epoch": position.epoch,
        "batches_done": position.batches_done,
        "seconds": round(position.seconds, 3),
    }


def _position_from(data: dict[str, Any] | None, tensors: dict[str, torch.Tensor]) -> EpochPosition | None:
    if data is None:
        return None
    loss_sum = tensors["position/loss_sum"]
    return EpochPosition(int(data["epoch"]), int(data["batches_done"]), loss_sum, float(data["seconds"]))


def _record_dict(record: StageRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "trains": list(record.trains),
        "best_epoch": record.best_epoch,
        "best_valid_loss": record.best_valid_loss,
        "stopped": record.stopped,
        "epochs": [asdict(e) for e in record.epochs],
    }


def _record_from(data: dict[str, Any]) -> StageRecord:
    return StageRecord(
        name=data["name"],
        trains=list(data["trains"]),
        epochs=[EpochRecord(**e) for e in data["epochs"]],
        best_epoch=int(data["best_epoch"]),
        best_valid_loss=float(data["best_valid_loss"]),
        stopped=data["stopped"],
    )
