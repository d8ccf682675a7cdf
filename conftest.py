"""Fixtures shared by the core's tests (tests/) and the built-in plugins' tests (plugins/*/tests/)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
NETE_TINY = REPO / "tests" / "fixtures" / "nete-tiny"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared",
        metavar="DIR",
        default=None,
        help="the shared folder holding the real datasets (DIR/data/semeval2014-absa/...) that some tests "
        "read; default: $PEPLER_SHARED, else ../shared beside the repository",
    )


def _shared_choice(config: pytest.Config) -> tuple[Path, str | None]:
    """The shared folder and how it was named: '--shared', 'PEPLER_SHARED', or None for the default."""
    if chosen := config.getoption("shared"):
        return Path(chosen).expanduser().resolve(), "--shared"
    if chosen := os.environ.get("PEPLER_SHARED"):
        return Path(chosen).expanduser().resolve(), "PEPLER_SHARED"
    return REPO.parent / "shared", None


@pytest.fixture(scope="session")
def shared_dir(pytestconfig: pytest.Config) -> Path:
    """Where tests read the real datasets: ``--shared DIR``, else ``$PEPLER_SHARED``, else ``../shared``
    beside the repository (where CI puts it). It may not exist; use ``shared_file`` to need a file in it."""
    return _shared_choice(pytestconfig)[0]


@pytest.fixture(scope="session")
def shared_file(pytestconfig: pytest.Config) -> Callable[[str, str], Path]:
    """``shared_file("data/x/y.xml", "the X data")``: that file under the shared folder. Missing, the test
    skips and says what would make it run; named explicitly (--shared, $PEPLER_SHARED) but missing, it fails,
    as a folder someone pointed at that lacks the data is a mistake, not an absent optional dataset."""

    def find(relative: str, what: str) -> Path:
        folder, named_by = _shared_choice(pytestconfig)
        path = folder / relative
        if path.is_file():
            return path
        message = f"{what} not found under {folder} (no {relative})"
        if named_by is not None:
            pytest.fail(f"{message}, the shared folder given by {named_by}", pytrace=False)
        pytest.skip(f"{message}: pass --shared DIR or set PEPLER_SHARED to a folder holding {relative}")

    return find


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
