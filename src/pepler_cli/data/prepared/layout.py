"""The prepared dataset's directory ``data/<name>/`` (specified in docs/formats.md): its format version and
the names of its files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FORMAT = "pepler-dataset/1"
MANIFEST_FILE = "manifest.yaml"
RECORDS_FILE = "records.jsonl"
FEATURES_FILE = "features.txt"
SPLITS_DIR = "splits"
SPLIT_PARTS = ("train", "validation", "test")

Split = tuple[list[int], list[int], list[int]]


def split_file(k: int, part: str) -> str:
    return f"{SPLITS_DIR}/{k}/{part}.index"


def data_files(split_keys: Sequence[int]) -> list[str]:
    """Every file the fingerprint covers, in fingerprint order."""
    return [RECORDS_FILE, FEATURES_FILE] + [
        split_file(k, part) for k in sorted(split_keys) for part in SPLIT_PARTS
    ]


def feature_file(root: Path) -> Path:
    """The file of a prepared dataset's feature set, one feature a line."""
    return Path(root) / FEATURES_FILE
