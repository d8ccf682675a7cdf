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
