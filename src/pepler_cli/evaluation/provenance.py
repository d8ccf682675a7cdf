"""Where scores come from: the run and decoding that made a predictions file, and the key they are filed under.

``pepler generate`` writes ``preds.meta.yaml`` beside ``preds.jsonl`` (which run, dataset, split, decoding).
``pepler score`` reads it, checks that it describes exactly these predictions (sha256), copies the run and
generation details into ``preds.scores.yaml`` and records the scores in the run's manifest under ``scores:``,
keyed by what they were measured on (``"split 1 test"``, ``"split 1 test, beam 4"``,
``"split 1 test, given feature"``).

It is also the one reader of a ``feature_hint`` (``feature_hint_of``), whether a sidecar, a scores file or a
run's scores entry holds it: which feature, if any, generate placed in the prompt. ``given`` reads the test
record's own feature (an upper bound), so every table says so (``hint_label``) and never ranks it silently
beside the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pepler_cli.errors import PeplerError
from pepler_cli.files import describe
from pepler_cli.predictions import FEATURE_HINT_MODES, feature_hint_label, meta_path, read_meta

# Descriptive fields of a run, as generate's sidecar copies them from the run manifest's config.
RUN_FIELDS = ("name", "model", "prompt", "strategy", "rating_head", "backbone")

# The options of `pepler generate` that matter to each decoding method, as its GenerateConfig names them. The
# first one names the variant in a key: "beam 4", "top-k 50".
PARAMETERS_OF_METHOD: dict[str, tuple[str, ...]] = {
    "greedy": (),
    "beam": ("beams", "length_penalty"),
    "top-k": ("top_k", "temperature", "seed"),
    "top-p": ("top_p", "temperature", "seed"),
}


@dataclass
class Link:
    """What scores.yaml and the run learn from a predictions file's sidecar."""

    run: dict[str, Any]
    generation: dict[str, Any]
    key: str
    feature_hint: dict[str, Any] = field(default_factory=lambda: dict(NO_HINT))


@dataclass
class LinkResult:
    link: Link | None
    notes: list[str] = field(default_factory=list)


def link_predictions(predictions: Path, predictions_sha256: str) -> LinkResult:
    """Read ``<preds>.meta.yaml`` if there is one and it describes exactly these predictions.

    No sidecar is not a problem (predictions from elsewhere): no link, no note. A sidecar that cannot be read
    or whose recorded sha256 differs gives a note and no link; scoring goes on either way.
    """
    sidecar = meta_path(predictions)
    try:
        meta = read_meta(predictions)
    except PeplerError as error:
        return _not_linked(error.message)
    if meta is None:
        return LinkResult(None)
    recorded = meta.get("predictions")
    if not isinstance(recorded, dict) or recorded.get("sha256") != predictions_sha256:
        return _not_linked(
            f"{sidecar} was written for other predictions (its predictions.sha256 differs from {predictions}'s); "
            "regenerate or remove it"
        )
    run_block = meta.get("run")
    if not isinstance(run_block, dict) or not isinstance(run_block.get("path"), str):
        return _not_linked(f"{sidecar}: field 'run.path' is missing")
    config: dict[str, Any] = meta["config"] if isinstance(meta.get("config"), dict) else {}
    dataset: dict[str, Any] = meta["dataset"] if isinstance(meta.get("dataset"), dict) else {}
    decoding = decoding_of(config)
    hint = feature_hint_of(meta, str(sidecar))  # malformed: an error, not a note (never lose a "given")
    key = scores_key(dataset, decoding, predictions, hint)
    run = {"path": run_block["path"], **{name: run_block.get(name) for name in RUN_FIELDS}}
    generation = {
        "meta": str(sidecar),
        "key": key,
        "created": meta.get("created"),
        "dataset": dataset,
        "decoding": decoding,
        "config": config,
    }
    return LinkResult(Link(run=run, generation=generation, key=key, feature_hint=hint))


def _not_linked(reason: str) -> LinkResult:
    return LinkResult(None, [f"note: not linked to a run: {reason}"])


def decoding_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The decoding method and the options that matter to it, from generate's options; greedy when none."""
    method = config.get("decoding")
    method = method if isinstance(method, str) and method else "greedy"
    relevant = PARAMETERS_OF_METHOD.get(method, ())
    return {"method": method, **{k: config[k] for k in relevant if config.get(k) is not None}}


def decoding_label(decoding: Mapping[str, Any] | None) -> str:
    """``greedy``, ``beam 4``, ``top-k 50``, ``top-p 0.9, temperature 0.7``: the method and what sets it apart."""
    method = str((decoding or {}).get("method") or "greedy")
    if method == "greedy" or decoding is None:
        return "greedy"
    label = method
    parameters = PARAMETERS_OF_METHOD.get(method, ())
    variant = _number(decoding.get(parameters[0])) if parameters else None
    if variant is not None:
        label = f"{label} {variant:g}"
    temperature = _number(decoding.get("temperature"))
    if temperature is not None and temperature != 1:
        label = f"{label}, temperature {temperature:g}"
    return label


def scores_key(
    dataset: Mapping[str, Any],
    decoding: Mapping[str, Any] | None,
    predictions: Path,
    hint: Mapping[str, Any] | None = None,
) -> str:
    """The readable key of a run's scores entry: ``split 1 test`` plus ``, beam 4`` when not greedy and
    ``, given feature`` (``, predicted feature (counts)``, ``, chosen feature: sound``) with a feature hint, so
    scores with and without a hint never overwrite each other in the run's manifest."""
    parts = []
    if dataset.get("split_number") is not None:
        parts.append(f"split {dataset['split_number']}")
    if dataset.get("split"):
        parts.append(str(dataset["split"]))
    key = " ".join(parts) or Path(predictions).name
    label = decoding_label(decoding)
    key = key if label == "greedy" else f"{key}, {label}"
    hint_part = _hint_key(hint or NO_HINT)
    return f"{key}, {hint_part}" if hint_part else key


def run_entry(
    scores: Mapping[str, float],
    predictions: Path,
    predictions_sha256: str,
    scores_file: Path,
    hint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a run's manifest keeps for one scoring: every metric, n, which files they came from and, with a
    hint, the ``feature_hint`` (so `pepler compare RUN` labels the row as the scores file does)."""
    entry = {
        **scores,
        "predictions": str(Path(predictions).resolve()),
        "predictions_sha256": predictions_sha256,
        "scores_file": str(Path(scores_file).resolve()),
        "scored": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if hint is not None and hint.get("mode", "none") != "none":
        entry["feature_hint"] = dict(hint)
    return entry


# --- feature hints --------------------------------------------------------------------------------------

# What a file written before feature hints (or by `generate --feature-hint none`) means.
NO_HINT: dict[str, Any] = {"mode": "none", "predictor": None, "feature": None, "reads_test_record": False}


def feature_hint_of(document: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """The ``feature_hint`` of a predictions sidecar, a scores file or a run's scores entry (one shape in all
    three, docs/formats.md), checked and complete; mode none when absent (older files had no hint). A
    malformed one is a PeplerError naming ``where`` and the field (``prefix`` + ``feature_hint``…): a row that
    may have read the test record is never shown as if it had not."""
    name = f"{prefix}feature_hint"
    hint = document.get("feature_hint")
    if hint is None:
        return dict(NO_HINT)
    if not isinstance(hint, Mapping):
        raise PeplerError(f"{where}: field '{name}' must be a mapping with 'mode', got {describe(hint)}")
    mode = hint.get("mode", "none")
    if mode not in FEATURE_HINT_MODES:
        got = repr(mode) if isinstance(mode, str) else describe(mode)
        raise PeplerError(
            f"{where}: field '{name}.mode' must be one of {', '.join(FEATURE_HINT_MODES)}, got {got}"
        )
    for part in ("predictor", "feature"):
        if hint.get(part) is not None and not isinstance(hint[part], str):
            raise PeplerError(
                f"{where}: field '{name}.{part}' must be a string or null, got {describe(hint[part])}"
            )
    reads = hint.get("reads_test_record", mode == "given")
    if not isinstance(reads, bool):
        raise PeplerError(
            f"{where}: field '{name}.reads_test_record' must be true/false, got {describe(reads)}"
        )
    return {
        "mode": mode,
        "predictor": hint.get("predictor"),
        "feature": hint.get("feature"),
        "reads_test_record": reads or mode == "given",  # given reads the test record, whatever else it says
    }


def hint_label(hint: Mapping[str, Any] | None) -> str:
    """The hint as tables name it (``predictions.feature_hint_label``); "" without one."""
    return feature_hint_label({"feature_hint": hint})


def reads_test_record(hint: Mapping[str, Any] | None) -> bool:
    """Whether the explanations were made from the test record's own feature (``--feature-hint given``)."""
    if not hint:
        return False
    return hint.get("mode") == "given" or hint.get("reads_test_record") is True


def hint_line(hint: Mapping[str, Any] | None) -> str | None:
    """The line ``pepler score`` prints about the hint; None without one."""
    label = hint_label(hint)
    if not label:
        return None
    if reads_test_record(hint):
        return f"feature hint: {label} — an upper bound, not comparable with runs that do not read it"
    return f"feature hint: {label}"


def _hint_key(hint: Mapping[str, Any]) -> str:
    """The hint's part of a scores key: the label, "given feature" without its long explanation."""
    return "given feature" if hint.get("mode") == "given" else hint_label(hint)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
