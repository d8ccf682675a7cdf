"""``<predictions>.scores.yaml``: what ``pepler score`` measured, on which predictions, with which settings.

Format (docs/formats.md): ``format``, ``pepler_version``, ``predictions`` (path, sha256), ``run`` and
``generation`` when the predictions' sidecar linked them to a run, then ``feature_hint`` (the sidecar's, mode none
when it had none; absent when not linked, read as none), ``n``, ``features`` (where the feature set
came from), ``rating_range`` (the clipping range and its source, or null) and ``scores`` (every metric).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pepler_cli
from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.provenance import Link
from pepler_cli.files import read_yaml_mapping, write_yaml

SCORES_FORMAT = "pepler-scores/1"


def default_scores_path(predictions: Path) -> Path:
    """preds.jsonl -> preds.scores.yaml, in the same folder."""
    return predictions.with_name(f"{predictions.name.removesuffix('.jsonl')}.scores.yaml")


def scores_document(
    predictions: Path,
    predictions_sha256: str,
    scores: dict[str, float],
    features: dict[str, Any],
    rating_range: dict[str, Any] | None,
    link: Link | None,
) -> dict[str, Any]:
    """The scores and everything needed to tell which predictions and settings they belong to."""
    document: dict[str, Any] = {
        "format": SCORES_FORMAT,
        "pepler_version": pepler_cli.__version__,
        "predictions": {"path": str(predictions), "sha256": predictions_sha256},
    }
    if link is not None:
        document["run"] = link.run
        document["generation"] = link.generation
        document["feature_hint"] = link.feature_hint
    document["n"] = scores["n"]
    document["features"] = features
    document["rating_range"] = rating_range
    document["scores"] = {key: value for key, value in scores.items() if key != "n"}
    return document


def write_scores_file(path: Path, document: dict[str, Any]) -> None:
    write_yaml(path, document)


def read_scores_file(path: Path) -> dict[str, Any]:
    """A scores file's document, its format and ``scores`` mapping checked; a problem is one line."""
    document = read_yaml_mapping(path, "scores file")
    document_format = document.get("format")
    scores = document.get("scores")
    if document_format != SCORES_FORMAT:
        raise PeplerError(
            f"{path}: neither a run directory nor a scores file "
            f"(field 'format' is {document_format!r}, expected {SCORES_FORMAT!r})"
        )
    if not isinstance(scores, dict):
        raise PeplerError(f"{path}: field 'scores' must be a mapping of metric names to numbers")
    return document
