"""Fixtures shared by the core's tests (tests/) and the built-in plugins' tests (plugins/*/tests/)."""

from __future__ import annotations

from pathlib import Path

import pytest

NETE_TINY = Path(__file__).parent / "tests" / "fixtures" / "nete-tiny"


@pytest.fixture(scope="session")
def nete_tiny_data(tmp_path_factory) -> Path:
    """The nete-tiny fixture prepared once per session (60 records, 5 splits); tests only read it."""
    from typer.testing import CliRunner

    from pepler_cli.cli.app import app

    out = tmp_path_factory.mktemp("nete-tiny") / "data"
    result = CliRunner().invoke(
        app, ["prepare", "tripadvisor", "--source", str(NETE_TINY), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out
