"""``pepler export-data``: a prepared dataset in the NETE layout other tools read."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from pepler_cli.cli.common import report_errors


class DataFormat(str, Enum):
    nete = "nete"


@report_errors
def export_data_command(
    data: Path = typer.Argument(..., help="Prepared dataset directory (made by `pepler prepare`)."),
    out: Path = typer.Option(..., "--out", help="Directory to write (atomically)."),
    data_format: DataFormat = typer.Option(
        DataFormat.nete, "--format", help="nete: reviews.pickle + 1..5/*.index."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
) -> None:
    """Export a prepared dataset for other tools: --format nete writes reviews.pickle (plain dicts: user, item,
    rating, template = (feature, opinion, sentence, sentiment)) and 1..5/{train,validation,test}.index, the
    layout the authors' PEPLER, PETER and NETE code reads, and `pepler prepare tripadvisor --source` reads back."""
    from pepler_cli.console import err_console
    from pepler_cli.data.nete import export_nete

    written = export_nete(data, out, overwrite)
    err_console.print(f"exported {data} as {data_format.value} to {written}", highlight=False, markup=False)
