"""A resumable checkpoint, rewritten at the end of every epoch beside the run it will become.

``<out>.checkpoint/`` (``runs/pepler`` → ``runs/pepler.checkpoint``) holds:

- ``checkpoint.yaml``: its format, the options that shape training (so a resume with other options is refused),
  the dataset's fingerprint, the seconds trained so far and where training stands: the finished stages'
  records and the current stage's epochs, best loss and epochs without improvement;
- ``state.safetensors``: the parameter groups trained so far (the LM's only once a stage has tuned it: a
  frozen backbone is rebuilt from its plugin, not copied), the current stage's best weights, the optimizer's
  moments and the random number generators' states, so a resumed run continues exactly where it stopped.

Each save replaces the whole directory atomically; a finished run removes it. No pickles.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pepler_cli.config import TrainConfig, saved_options
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_directory, read_yaml_mapping, yaml_text
from pepler_cli.modeling.base import PromptModel
from pepler_cli.training.loop import EpochRecord, StageProgress, StageRecord

CHECKPOINT_FORMAT = "pepler-checkpoint/1"
STATE_FILE = "state.safetensors"
PROGRESS_FILE = "checkpoint.yaml"
# Options that may differ on resume: where the run goes, what to do with old outputs, and the hardware.
FREE_OPTIONS = ("out", "overwrite", "resume", "device", "precision")


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
    model: PromptModel,
    groups_trained: set[str],
    finished: list[StageRecord],
    current: StageProgress,
    optimizer: torch.optim.Optimizer,
    seconds: float,
) -> None:
    """Write the checkpoint after an epoch; ``current`` is the stage being trained (its optimizer given)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, parameter in _parameters_in(model, groups_trained).items():
        tensors[f"model/{name}"] = parameter
    # After an improving epoch the best weights are the current ones: saved once, not twice.
    best_is_current = current.record.best_epoch == len(current.record.epochs)
    if not best_is_current:
        for index, tensor in enumerate(current.best_state or []):
            tensors[f"best/{index}"] = tensor
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optimizer/{index}/{key}"] = torch.as_tensor(value)
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
        },
    }
    with atomic_directory(directory, overwrite=True) as tmp:
        save_file(
            {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
            str(tmp / STATE_FILE),
            metadata={"format": CHECKPOINT_FORMAT},
        )
        (tmp / PROGRESS_FILE).write_text(yaml_text(progress), encoding="utf-8")


def load_checkpoint(directory: Path, config: TrainConfig, fingerprint: str | None) -> Resumed:
    """Read a checkpoint made with the same training options on the same dataset, or explain why not."""
    progress_path = directory / PROGRESS_FILE
    try:
        progress = read_yaml_mapping(progress_path, "checkpoint file")
        tensors = load_file(str(directory / STATE_FILE))
    except PeplerError as error:
        raise PeplerError(f"{error.message}; damaged checkpoint, pass --overwrite to start over") from None
    except (SafetensorError, OSError) as error:
        raise PeplerError(
            f"{directory}: damaged checkpoint ({error}); pass --overwrite to start over"
        ) from None
    if progress.get("format") != CHECKPOINT_FORMAT:
        raise PeplerError(
            f"{progress_path}: not a {CHECKPOINT_FORMAT} checkpoint; pass --overwrite to start over"
        )
    _check_same_options(progress_path, progress.get("training_options") or {}, training_options(config))
    if progress.get("dataset_fingerprint") != fingerprint:
        raise PeplerError(
            f"{progress_path}: was made on another version of {config.data} (fingerprint differs); "
            "pass --overwrite to start over"
        )
    finished = [_record_from(d) for d in progress["finished_stages"]]
    current_dict = progress["current_stage"]
    best = None  # best_is_current: the stage takes the restored weights as its best
    if not current_dict.get("best_is_current"):
        best = [tensors[f"best/{i}"] for i in range(sum(k.startswith("best/") for k in tensors))]
    current = StageProgress(_record_from(current_dict), int(current_dict["epochs_without_improvement"]), best)
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


def restore_model(model: PromptModel, state: dict[str, torch.Tensor]) -> None:
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


def _parameters_in(model: PromptModel, groups: set[str]) -> dict[str, torch.nn.Parameter]:
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
