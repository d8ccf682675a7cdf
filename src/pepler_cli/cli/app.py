"""``pepler``: the command-line entry point. One module per subcommand; this file only joins them.

Subcommand modules import nothing heavy at top level (the library loads inside the commands), so
``pepler --help`` answers at once. Each command's help is its function's docstring.
"""

from __future__ import annotations

import typer

from pepler_cli.cli.attention import attention_command
from pepler_cli.cli.compare import compare_command
from pepler_cli.cli.explain import explain_command
from pepler_cli.cli.export import export_command
from pepler_cli.cli.export_data import export_data_command
from pepler_cli.cli.generate import generate_command
from pepler_cli.cli.plot import plot_app
from pepler_cli.cli.plugins import plugins_command
from pepler_cli.cli.prepare import prepare_command
from pepler_cli.cli.probe import probe_command
from pepler_cli.cli.report import report_command
from pepler_cli.cli.score import score_command
from pepler_cli.cli.serve import serve_command
from pepler_cli.cli.sweep import sweep_command
from pepler_cli.cli.train import train_command

app = typer.Typer(
    name="pepler",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from pepler_cli import __version__

        typer.echo(f"pepler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Personalized prompt learning for explainable recommendation (PEPLER): prepare → train → generate → score."""


for name, command in (
    ("prepare", prepare_command),
    ("train", train_command),
    ("generate", generate_command),
    ("explain", explain_command),
    ("serve", serve_command),
    ("score", score_command),
    ("probe", probe_command),
    ("compare", compare_command),
    ("sweep", sweep_command),
    ("attention", attention_command),
    ("report", report_command),
    ("export", export_command),
    ("export-data", export_data_command),
    ("plugins", plugins_command),
):
    app.command(name)(command)
app.add_typer(plot_app, name="plot")


def main() -> None:
    app()
