"""Explanations' token ids, computed once per dataset and tokenizer and kept beside the dataset.

Tokenizing a Yelp-sized dataset takes about a minute; every run of every variant on it needs the same ids.
They are stored as ``<dataset>/.cache/tokens-<key>.safetensors`` (one flat int32 array plus offsets), keyed by
the dataset's fingerprint and a hash of the tokenizer's full definition, so a changed dataset or tokenizer
never reads stale ids. The cache is an optimisation only: an unwritable dataset directory or a damaged cache
file means tokenizing again, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pepler_cli.plugins import Tokenizer

CACHE_DIR = ".cache"


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        definition = backend.to_str()
    else:  # a slow tokenizer: its vocabulary and class describe it well enough
        definition = json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items())])
    return hashlib.sha256(definition.encode("utf-8")).hexdigest()


def cache_path(dataset_path: Path, dataset_fingerprint: str, tokenizer: Tokenizer) -> Path:
    key = hashlib.sha256(f"{dataset_fingerprint}:{tokenizer_fingerprint(tokenizer)}".encode()).hexdigest()[
        :24
    ]
    return Path(dataset_path) / CACHE_DIR / f"tokens-{key}.safetensors"


def explanation_token_ids(dataset: Any, tokenizer: Tokenizer) -> list[list[int]]:
    """Token ids of every record's explanation (no special tokens), in record order."""
    path = (
        cache_path(dataset.path, dataset.fingerprint, tokenizer)
        if dataset.path and dataset.fingerprint
        else None
    )
    if path is not None:
        cached = _read(path, len(dataset.records))
        if cached is not None:
            return cached
    ids = tokenizer([r.text for r in dataset.records], add_special_tokens=False)["input_ids"]
    if path is not None:
        _write(path, ids)
    return ids


def _read(path: Path, count: int) -> list[list[int]] | None:
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        flat, offsets = tensors["ids"].tolist(), tensors["offsets"].tolist()
    except Exception:  # a damaged cache is rebuilt, not reported
        return None
    if len(offsets) != count + 1:
        return None
    return [flat[offsets[k] : offsets[k + 1]] for k in range(count)]


def _write(path: Path, ids: list[list[int]]) -> None:
    lengths = torch.tensor([0] + [len(row) for row in ids], dtype=torch.int64)
    tensors = {
        "ids": torch.tensor([token for row in ids for token in row], dtype=torch.int32),
        "offsets": torch.cumsum(lengths, dim=0),
    }
    try:
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tokens.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(Exception):
            os.unlink(tmp)
