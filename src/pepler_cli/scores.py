"""Scores and the runs they belong to: the link from ``pepler score`` back to the run that made the predictions.

``pepler generate`` writes ``preds.meta.yaml`` beside ``preds.jsonl`` (which run, dataset, split, decoding).
``pepler score`` reads it, checks that it describes exactly these predictions (sha256), copies the run and
generation details into ``preds.scores.yaml`` and records the scores in the run's ``manifest.yaml`` under
``scores:``, keyed by what they were measured on (``"split 1 test"``, ``"split 1 test, beam 4"``).
``pepler compare`` reads both back (see comparison.py).

Only the standard library and pepler's small modules at the top; yaml is imported where it is used.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.runs import MANIFEST, RUN_FORMAT

SCORES_FORMAT = "pepler-scores/1"
META_FORMAT = "pepler-predictions-meta/1"

# Descriptive fields of a run, as generate's meta copies them from the run manifest's config.
RUN_FIELDS = ("name", "prompt", "strategy", "rating_head", "backbone")

# Decoding parameters by method, as `pepler generate` keeps them beside `decoding:` in its options (several
# spellings accepted). The first of each list that is set names the variant in a key: "beam 4", "top-k 50".
_BEAM_WIDTH = ("beams", "num_beams", "beam_size", "beam_width")
_SAMPLING = ("temperature", "seed")
_PARAMETERS_OF_METHOD: dict[str, tuple[str, ...]] = {
    "greedy": (),
    "beam": (*_BEAM_WIDTH, "length_penalty"),
    "top-k": ("top_k", *_SAMPLING),
    "top-p": ("top_p", *_SAMPLING),
    "sampling": ("top_k", "top_p", *_SAMPLING),
}
_VARIANT_OF_METHOD = {"beam": _BEAM_WIDTH, "top-k": ("top_k",), "top-p": ("top_p",)}
_METHOD_KEYS = ("method", "name", "strategy", "kind", "type")


@dataclass
class Link:
    """What scores.yaml and the run learn from a predictions file's meta sidecar."""

    run: dict[str, Any]
    generation: dict[str, Any]
    key: str


@dataclass
class LinkResult:
    link: Link | None
    notes: list[str] = field(default_factory=list)


def load_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; any problem is one PeplerError line naming ``path``."""
    import yaml

    from pepler_cli.fsutil import read_user_text

    text = read_user_text(Path(path), what)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PeplerError(f"{path}: not valid YAML: {first}") from None
    if not isinstance(loaded, dict):
        raise PeplerError(f"{path}: a {what} must be a YAML mapping, got {_kind(loaded)}")
    return loaded


def meta_path_for(predictions: Path) -> Path:
    """Where ``pepler generate`` put the predictions' meta sidecar."""
    from pepler_cli.explain import predictions_meta_path

    return predictions_meta_path(predictions)


def link_predictions(predictions: Path, predictions_sha256: str) -> LinkResult:
    """Read ``<preds>.meta.yaml`` if there is one and it describes exactly these predictions.

    No sidecar is not a problem (predictions from elsewhere): no link, no note. A sidecar that cannot be read
    or whose recorded sha256 differs gives a note and no link; scoring goes on either way.
    """
    meta_path = meta_path_for(predictions)
    if not meta_path.exists():
        return LinkResult(None)
    try:
        meta = load_yaml_mapping(meta_path, "predictions meta file")
    except PeplerError as error:
        return LinkResult(None, [f"note: not linked to a run: {error.message}"])
    if meta.get("format") != META_FORMAT:
        return LinkResult(
            None, [f"note: not linked to a run: {meta_path}: field 'format': expected {META_FORMAT!r}"]
        )
    recorded = meta.get("predictions")
    recorded_sha = recorded.get("sha256") if isinstance(recorded, dict) else None
    if recorded_sha != predictions_sha256:
        return LinkResult(
            None,
            [
                (
                    f"note: not linked to a run: {meta_path} was written for other predictions "
                    f"(its predictions.sha256 differs from {predictions}'s); regenerate or remove it"
                )
            ],
        )
    run_block = meta.get("run")
    if not isinstance(run_block, dict) or not isinstance(run_block.get("path"), str):
        return LinkResult(None, [f"note: not linked to a run: {meta_path}: field 'run.path' is missing"])

    config: dict[str, Any] = meta["config"] if isinstance(meta.get("config"), dict) else {}
    dataset: dict[str, Any] = meta["dataset"] if isinstance(meta.get("dataset"), dict) else {}
    decoding = decoding_of(config)
    key = scores_key(dataset, decoding, predictions)
    run = {"path": run_block["path"], **{name: run_block.get(name) for name in RUN_FIELDS}}
    generation = {
        "meta": str(meta_path),
        "key": key,
        "created": meta.get("created"),
        "dataset": dataset,
        "decoding": decoding,
        "config": config,
    }
    return LinkResult(Link(run=run, generation=generation, key=key))


def decoding_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The decoding method and the parameters that matter to it, from generate's options; greedy when none.

    ``config.decoding`` is a method name, its parameters beside it in ``config`` (``decoding: beam`` with
    ``beams: 4``; the parameters of other methods are left out), or a mapping ``{method: beam, beams: 4}``.
    """
    raw = config.get("decoding")
    if isinstance(raw, dict):
        method = next((raw[k] for k in _METHOD_KEYS if isinstance(raw.get(k), str)), None)
        parameters = {k: v for k, v in raw.items() if k not in _METHOD_KEYS}
        if not method:
            width = _first_number(parameters, _BEAM_WIDTH)
            method = "beam" if width is not None and width > 1 else "greedy"
    else:
        method = raw if isinstance(raw, str) and raw else "greedy"
        relevant = _PARAMETERS_OF_METHOD.get(
            method, tuple(k for ks in _PARAMETERS_OF_METHOD.values() for k in ks)
        )
        parameters = {k: config[k] for k in relevant if k in config}
    parameters = {k: v for k, v in parameters.items() if v is not None}
    return {"method": str(method), **parameters}


def decoding_label(decoding: Mapping[str, Any] | None) -> str:
    """``greedy``, ``beam 4``, ``top-k 50``, ``top-p 0.9, temperature 0.7``: the method and what sets it apart."""
    if not decoding:
        return "greedy"
    method = str(decoding.get("method") or "greedy")
    if method == "greedy":
        return method
    label = method
    value = _first_number(decoding, _VARIANT_OF_METHOD.get(method, ()))
    if value is not None:
        label = f"{label} {value:g}"
    temperature = _first_number(decoding, ("temperature",))
    if temperature is not None and temperature != 1:
        label = f"{label}, temperature {temperature:g}"
    return label


def scores_key(dataset: Mapping[str, Any], decoding: Mapping[str, Any] | None, predictions: Path) -> str:
    """The readable key of a run's scores entry: ``split 1 test`` plus ``, beam 4`` when not greedy."""
    parts = []
    if dataset.get("split_number") is not None:
        parts.append(f"split {dataset['split_number']}")
    if dataset.get("split"):
        parts.append(str(dataset["split"]))
    key = " ".join(parts) or Path(predictions).name
    label = decoding_label(decoding)
    return key if label == "greedy" else f"{key}, {label}"


def run_entry(
    scores: Mapping[str, float], predictions: Path, predictions_sha256: str, scores_file: Path
) -> dict[str, Any]:
    """What a run's manifest keeps for one scoring: every metric, n, and which files they came from."""
    entry: dict[str, Any] = {key: value for key, value in scores.items()}
    entry["predictions"] = str(Path(predictions).resolve())
    entry["predictions_sha256"] = predictions_sha256
    entry["scores_file"] = str(Path(scores_file).resolve())
    entry["scored"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return entry


def record_in_run(run_path: Path, key: str, entry: dict[str, Any], run_name: str | None) -> str | None:
    """Put ``entry`` under ``scores: {key: ...}`` of the run's manifest.yaml; None when done, else a note.

    Only manifest.yaml changes: it is read, updated and written back atomically (a temporary sibling renamed
    over it, with the old file's permissions). A missing, foreign or read-only run is not an error: the
    scores are still in scores.yaml, so the caller prints the note and carries on.
    """
    import yaml

    from pepler_cli.fsutil import atomic_write_text

    run_path = Path(run_path)
    manifest_path = run_path / MANIFEST
    if not run_path.is_dir():
        return f"note: scores not recorded in the run: {run_path} does not exist (moved or deleted?)"
    if not manifest_path.is_file():
        return f"note: scores not recorded in the run: {run_path} has no {MANIFEST}"
    if not (os.access(run_path, os.W_OK) and os.access(manifest_path, os.W_OK)):
        return f"note: scores not recorded in the run: {manifest_path} is not writable (pass --no-record to skip)"
    with _locked(run_path):
        try:
            manifest = load_yaml_mapping(manifest_path, "run manifest")
        except PeplerError as error:
            return f"note: scores not recorded in the run: {error.message}"
        if manifest.get("format") != RUN_FORMAT:
            return f"note: scores not recorded in the run: {manifest_path}: field 'format': expected {RUN_FORMAT!r}"
        if run_name is not None and manifest.get("name") not in (None, run_name):
            return (
                f"note: scores not recorded in the run: {run_path} now holds run {manifest.get('name')!r}, "
                f"not {run_name!r} that made the predictions"
            )
        existing = manifest.get("scores")
        if existing is not None and not isinstance(existing, dict):
            return f"note: scores not recorded in the run: {manifest_path}: field 'scores' is not a mapping"
        scores = dict(existing or {})
        scores[key] = entry
        manifest["scores"] = scores
        mode = stat.S_IMODE(manifest_path.stat().st_mode)
        try:
            atomic_write_text(manifest_path, yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
            os.chmod(manifest_path, mode)
        except OSError as error:
            return f"note: scores not recorded in the run: cannot write {manifest_path} ({error.strerror})"
    return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory itself, so two scorings cannot lose each other's entry.

    Locking the directory (not a lock file) leaves the run's files as they are; where that is not possible
    the update goes on unlocked.
    """
    try:
        import fcntl

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


def number_or_none(value: Any, where: str) -> float | None:
    """A metric value as read from YAML: a number, or None when absent or NaN; anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PeplerError(f"{where} must be a number, got {_kind(value)}")
    if math.isnan(value):
        return None
    return float(value)


def _first_number(values: Mapping[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
