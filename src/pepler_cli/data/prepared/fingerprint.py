"""Which data a run was trained on: the sha256 of every data file, and one fingerprint over them.

The fingerprint is the sha256 of the lines ``"<relative path> <sha256 of the file>\\n"`` for records.jsonl,
features.txt and splits/<k>/{train,validation,test}.index (k ascending), in that order: one hash that a run
manifest can quote to say exactly which data it was trained on. The manifest's ``files`` holds each file's
sha256, so a file changed after prepare is named on load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pepler_cli.data.prepared.layout import MANIFEST_FILE, SPLITS_DIR, data_files
from pepler_cli.errors import PeplerError
from pepler_cli.files import sha256_file


def dataset_fingerprint(file_hashes: Mapping[str, str]) -> str:
    """sha256 over ``"<path> <sha256>\\n"`` of the data files, in :func:`data_files` order."""
    keys = sorted(int(path.split("/")[1]) for path in file_hashes if path.startswith(SPLITS_DIR + "/"))
    digest = hashlib.sha256()
    for path in data_files(sorted(set(keys))):
        digest.update(f"{path} {file_hashes[path]}\n".encode())
    return digest.hexdigest()


def verify_hashes(root: Path, manifest: Mapping[str, Any], manifest_path: Path, expected: list[str]) -> None:
    """Recompute the sha256 of the data files ``expected`` under ``root`` and compare them, and the
    fingerprint, with the manifest: a file changed since prepare is named."""
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise PeplerError(f"{manifest_path}: field 'files': missing (the sha256 of every data file)")
    actual = {relative: sha256_file(root / relative) for relative in expected}
    for relative in expected:
        if recorded.get(relative) != actual[relative]:
            raise PeplerError(
                f"{root / relative}: changed since it was prepared (its sha256 differs from {MANIFEST_FILE} "
                "field 'files'); prepare the dataset again"
            )
    if manifest.get("fingerprint") != dataset_fingerprint(actual):
        raise PeplerError(f"{manifest_path}: field 'fingerprint' does not match the data files")
