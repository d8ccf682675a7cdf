"""Imports point one way: the options (config) and generating from a finished run need no training code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def modules_loaded_by(module: str) -> list[str]:
    """The pepler_cli modules that importing ``module`` loads, in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pepler_cli'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", ["pepler_cli.config", "pepler_cli.generation.generate"])
def test_no_training_code_behind(module: str) -> None:
    loaded = modules_loaded_by(module)
    assert module in loaded
    assert [m for m in loaded if m == "pepler_cli.training" or m.startswith("pepler_cli.training.")] == []
