"""The per-dataset, per-tokenizer cache of explanation token ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.training.token_cache import CACHE_DIR, cache_path, explanation_token_ids

FIXTURE = Path(__file__).parent / "fixtures" / "nete-tiny"


@pytest.fixture
def dataset(tmp_path):
    out = tmp_path / "data"
    assert (
        CliRunner()
        .invoke(app, ["prepare", "tripadvisor", "--source", str(FIXTURE), "--out", str(out)])
        .exit_code
        == 0
    )
    return load_prepared(out)


class Refusing:
    """A tokenizer stand-in that fails if asked to tokenize: proves the cache was read."""

    def __init__(self, real):
        self.backend_tokenizer = real.backend_tokenizer

    def __call__(self, *args, **kwargs):
        raise AssertionError("tokenized although the cache was there")


def test_ids_are_cached_and_read_back(dataset, tokenizer):
    first = explanation_token_ids(dataset, tokenizer)
    assert first == tokenizer([r.text for r in dataset.records], add_special_tokens=False)["input_ids"]
    path = cache_path(dataset.path, dataset.fingerprint, tokenizer)
    assert path.is_file() and path.parent.name == CACHE_DIR
    assert explanation_token_ids(dataset, Refusing(tokenizer)) == first
    # The cache sits beside the data without becoming part of it: the dataset still loads and verifies.
    assert load_prepared(dataset.path).fingerprint == dataset.fingerprint


def test_a_damaged_cache_is_rebuilt(dataset, tokenizer):
    first = explanation_token_ids(dataset, tokenizer)
    path = cache_path(dataset.path, dataset.fingerprint, tokenizer)
    path.write_bytes(b"not a safetensors file")
    assert explanation_token_ids(dataset, tokenizer) == first


def test_another_dataset_or_tokenizer_gets_another_key(dataset, tokenizer):
    assert cache_path(dataset.path, "other", tokenizer) != cache_path(
        dataset.path, dataset.fingerprint, tokenizer
    )
