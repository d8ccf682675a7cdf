"""Shared fixtures: the tiny GPT-2 with the real tokenizer, and registry hygiene."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the repository (or $PEPLER_SHARED), where the real datasets live; None if absent."""
    candidate = Path(os.environ.get("PEPLER_SHARED", REPO.parent / "shared"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def tiny_backbone():
    from pepler_cli.plugins import get_backbone

    return get_backbone("gpt2-tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_backbone):
    return tiny_backbone.load_tokenizer()


@pytest.fixture
def tiny_lm(tiny_backbone):
    return tiny_backbone.load_model()


# The feature set of the `scored_dataset` fixture.
SCORED_FEATURES = {"breakfast", "location", "room", "staff"}


@pytest.fixture
def scored_dataset(tmp_path: Path) -> Path:
    """A prepared dataset reduced to what `pepler score` reads: its feature set and its rating range."""
    data = tmp_path / "data" / "hotels"
    data.mkdir(parents=True)
    (data / "features.txt").write_text("".join(f + "\n" for f in sorted(SCORED_FEATURES)), encoding="utf-8")
    (data / "manifest.yaml").write_text(
        "format: pepler-dataset/1\nrating_range: [1.0, 5.0]\n", encoding="utf-8"
    )
    return data


@pytest.fixture(scope="module")
def tokenizer_loaded_once():
    """`prepare` loads GPT-2's tokenizer once for the module instead of once a call (a second each)."""
    import functools
    from types import SimpleNamespace

    from pepler_cli import preparation

    real = preparation.get_backbone
    load = functools.cache(lambda name: real(name).load_tokenizer())
    patch = pytest.MonkeyPatch()
    patch.setattr(
        preparation, "get_backbone", lambda name: SimpleNamespace(load_tokenizer=lambda: load(name))
    )
    yield
    patch.undo()
