"""``pepler``: the command-line entry point. One module per subcommand; this file only joins them.

Subcommand modules import nothing heavy at top level (torch and transformers load inside the commands), so
``pepler --help`` answers at once.
"""

from __future__ import annotations

import typer

from pepler_cli.cli.compare import compare_command
from pepler_cli.cli.generate import generate_command
from pepler_cli.cli.plugins import plugins_command
from pepler_cli.cli.prepare import prepare_command
from pepler_cli.cli.score import score_command
from pepler_cli.cli.train import train_command

app = typer.Typer(
    name="pepler",
    help="Personalized prompt learning for explainable recommendation (PEPLER): prepare → train → generate → score.",
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


app.command("prepare", help="Prepare a dataset: the paper's NETE pickles, or raw reviews with built-in extraction.")(
    prepare_command
)
app.command("train", help="Train PEPLER on a prepared dataset and write a run directory.")(train_command)
app.command("generate", help="Explain a split's (user, item) pairs with a trained run; writes preds.jsonl.")(
    generate_command
)
app.command("score", help="Score predictions with the paper's metrics (BLEU, ROUGE, USR, FMR, FCR, DIV, RMSE, MAE).")(
    score_command
)
app.command("compare", help="Compare runs side by side with the paper's metrics, best values marked.")(compare_command)
app.command("plugins", help="List the installed backbone and rating-head plugins.")(plugins_command)


def main() -> None:
    app()
