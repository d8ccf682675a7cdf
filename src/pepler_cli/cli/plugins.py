"""``pepler plugins``: every backbone and rating head the registry knows."""

from __future__ import annotations

import typer

from pepler_cli.cli.common import report_errors


@report_errors
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of a table."),
) -> None:
    """List the installed backbone and rating-head plugins."""
    import json
    from dataclasses import asdict

    from rich.table import Table

    from pepler_cli.console import out_console
    from pepler_cli.plugins import registry

    rows = registry.info()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = Table(title="pepler plugins")
    for column in ("name", "kind", "package", "version", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, row.kind.replace("_", " "), row.package, row.version, row.description)
    out_console.print(table)
