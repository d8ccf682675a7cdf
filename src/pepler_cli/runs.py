"""The run directory: manifest.yaml + safetensors weights, written atomically, verified on load.

Layout of ``runs/<name>/``:

- ``manifest.yaml``: resolved config (``config.model`` names the model plugin; none: PEPLER), command, versions,
  dataset fingerprint, per-stage/per-epoch losses, best epochs, the sha256 of every other file, and (added by
  ``pepler score``) the scores under ``scores:``

PEPLER's runs (``modeling/pepler_plugin.py``) hold:
- ``prompt.safetensors``: the user and item vectors and the rating head's weights
- ``backbone.safetensors`` + ``backbone_config.json``: only when the LM was tuned (or trained from scratch); a
  frozen backbone is referenced by plugin name, ``backbone_path`` and a description of its weights, not copied
- ``adapters.safetensors``: the LoRA adapters, when the strategy trained some (the manifest's ``lora`` says how
  they were set up)

Every run holds:

- ``users.txt``, ``items.txt``: the id of each user and item row of the model's tables, one a line
- ``tokenizer/``: the tokenizer's files (a word vocabulary for the baselines)

Another model plugin writes its own tensors as safetensors (the baselines: ``MODEL_WEIGHTS``).

This module knows the files and the manifest (and needs no torch, so ``pepler score`` stays quick);
``run_model.py`` writes a trained model into a run and rebuilds it from one.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_write_text, read_yaml_mapping, sha256_file, yaml_text

RUN_FORMAT = "pepler-run/1"
MANIFEST = "manifest.yaml"
PROMPT_WEIGHTS = "prompt.safetensors"
FEATURE_SCORER = "feature_scorer.safetensors"  # the learned feature predictor (modeling/feature_scorer.py)
BACKBONE_WEIGHTS = "backbone.safetensors"
BACKBONE_CONFIG = "backbone_config.json"
ADAPTER_WEIGHTS = "adapters.safetensors"
MODEL_WEIGHTS = "model.safetensors"  # a whole model's tensors (plugins other than PEPLER)
TOKENIZER_DIR = "tokenizer"
USERS = "users.txt"
ITEMS = "items.txt"


def read_manifest(run: Path) -> dict[str, Any]:
    path = Path(run) / MANIFEST
    if not path.is_file():
        raise PeplerError(f"{run}: not a pepler run (no {MANIFEST})")
    manifest = read_yaml_mapping(path, "run manifest")
    if manifest.get("format") != RUN_FORMAT:
        raise PeplerError(f"{path}: field 'format': expected {RUN_FORMAT!r}")
    return manifest


def check_loadable(run: Path, manifest: dict[str, Any]) -> None:
    """The manifest fields that loading a run reads, checked first: a damaged manifest is one line naming the
    field, never a crash halfway through building the model."""
    path = Path(run) / MANIFEST

    def wrong(field: str, expected: str, value: Any) -> PeplerError:
        shown = repr(value)
        shown = shown[:60] + "…" if len(shown) > 60 else shown
        return PeplerError(f"{path}: field {field!r}: expected {expected}, got {shown}")

    config = manifest.get("config")
    if not isinstance(config, dict):
        raise wrong("config", "a mapping of the options the run was trained with", config)
    if config.get("model") is not None and not isinstance(config["model"], str):
        raise wrong("config.model", "a model plugin's name", config["model"])
    if config.get("feature_hint", "none") not in ("none", "given", "predicted"):
        raise wrong("config.feature_hint", "none, given or predicted", config.get("feature_hint"))
    model = manifest.get("model")
    start = model.get("explanation_start") if isinstance(model, dict) else None
    if start is not None and not (
        isinstance(start, list) and start and all(type(t) is int and t >= 0 for t in start)
    ):
        raise wrong("model.explanation_start", "a list of token ids", start)
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise wrong("files", "a mapping of file names to their sha256", files)
    dataset = manifest.get("dataset")
    if not isinstance(dataset, dict):
        raise wrong("dataset", "a mapping (path, split, fingerprint)", dataset)
    if not isinstance(dataset.get("path"), str):
        raise wrong("dataset.path", "the path of the prepared dataset", dataset.get("path"))
    if type(dataset.get("split")) is not int or dataset["split"] < 1:
        raise wrong("dataset.split", "a split number", dataset.get("split"))
    if manifest.get("backbone") is not None and not isinstance(manifest["backbone"], dict):
        raise wrong("backbone", "a mapping (name, weights)", manifest["backbone"])
    lora = manifest.get("lora")
    if lora is None:
        return
    if not isinstance(lora, dict):
        raise wrong("lora", "a mapping (rank, alpha, dropout, targets)", lora)
    rank, alpha, dropout, targets = (lora.get(key) for key in ("rank", "alpha", "dropout", "targets"))
    if type(rank) is not int or rank < 1:
        raise wrong("lora.rank", "a positive whole number", rank)
    if type(alpha) not in (int, float) or not 0 < alpha < float("inf"):
        raise wrong("lora.alpha", "a positive number", alpha)
    if type(dropout) not in (int, float) or not 0 <= dropout < 1:
        raise wrong("lora.dropout", "a number from 0 to below 1", dropout)
    if not isinstance(targets, list) or not all(isinstance(target, str) for target in targets):
        raise wrong("lora.targets", "a list of module names", targets)


def verify_files(run: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists must exist with the recorded sha256, and every file loading reads must be
    listed: a file slipped into a run, or a manifest that lost its entries, is refused like a changed one."""
    listed = manifest.get("files", {})
    for name, expected in listed.items():
        path = Path(run) / name
        if not path.is_file():
            raise PeplerError(f"{path}: missing (listed in {MANIFEST})")
        if sha256_file(path) != expected:
            raise PeplerError(f"{path}: sha256 differs from {MANIFEST}; the file was changed or is damaged")
    for path in _loaded_files(Path(run)):
        name = path.relative_to(run).as_posix()
        if name not in listed:
            raise PeplerError(
                f"{path}: not listed in {MANIFEST} field 'files'; the run is incomplete or was changed"
            )
    for required in (USERS, ITEMS):
        if required not in listed:
            raise PeplerError(
                f"{Path(run) / MANIFEST}: field 'files' lacks {required}; the run is incomplete"
            )


def _loaded_files(run: Path) -> list[Path]:
    """The files of a run that loading it reads."""
    names = (
        PROMPT_WEIGHTS, BACKBONE_WEIGHTS, BACKBONE_CONFIG, ADAPTER_WEIGHTS, USERS, ITEMS, FEATURE_SCORER,
        MODEL_WEIGHTS,
    )  # fmt: skip
    found = [run / name for name in names if (run / name).is_file()]
    tokenizer = run / TOKENIZER_DIR
    if tokenizer.is_dir():
        found.extend(sorted(p for p in tokenizer.rglob("*") if p.is_file()))
    return found


def record_scores(run_path: Path, key: str, entry: dict[str, Any], run_name: str | None) -> str | None:
    """Put ``entry`` under ``scores: {key: ...}`` of the run's manifest.yaml; None when done, else a note.

    Only manifest.yaml changes: it is read, updated and written back atomically (a temporary sibling renamed
    over it, with the old file's permissions). A missing, foreign or read-only run is not an error: the
    scores are still in scores.yaml, so the caller prints the note and carries on.
    """
    run_path = Path(run_path)
    manifest_path = run_path / MANIFEST
    not_recorded = "note: scores not recorded in the run:"
    if not run_path.is_dir():
        return f"{not_recorded} {run_path} does not exist (moved or deleted?)"
    if not manifest_path.is_file():
        return f"{not_recorded} {run_path} has no {MANIFEST}"
    if not (os.access(run_path, os.W_OK) and os.access(manifest_path, os.W_OK)):
        return f"{not_recorded} {manifest_path} is not writable (pass --no-record to skip)"
    with _locked(run_path):
        try:
            manifest = read_manifest(run_path)
        except PeplerError as error:
            return f"{not_recorded} {error.message}"
        if run_name is not None and manifest.get("name") not in (None, run_name):
            return (
                f"{not_recorded} {run_path} now holds run {manifest.get('name')!r}, "
                f"not {run_name!r} that made the predictions"
            )
        existing = manifest.get("scores")
        if existing is not None and not isinstance(existing, dict):
            return f"{not_recorded} {manifest_path}: field 'scores' is not a mapping"
        manifest["scores"] = {**(existing or {}), key: entry}
        mode = stat.S_IMODE(manifest_path.stat().st_mode)
        try:
            atomic_write_text(manifest_path, yaml_text(manifest))
            os.chmod(manifest_path, mode)
        except OSError as error:
            return f"{not_recorded} cannot write {manifest_path} ({error.strerror})"
    return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory itself, so two scorings cannot lose each other's entry.

    Locking the directory (not a lock file) leaves the run's files as they are; where that is not possible
    the update goes on unlocked.
    """
    try:
        import fcntl  # POSIX only

        fd = os.open(directory, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
