"""``pepler attention``: a heatmap of the last layer's attention over the prompt and the generated words."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli.common import report_errors, tell, trust_remote_code_option


@report_errors
def attention_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train` (continuous prompt)."),
    user: str = typer.Option(..., "--user", help="The user's id, as in the dataset."),
    item: str = typer.Option(..., "--item", help="The item's id, as in the dataset."),
    out: Path = typer.Option(..., "--out", help="The figure to write: FIG.png or FIG.svg."),
    before: bool = typer.Option(
        False,
        "--before",
        help="The model before training: the plugin's backbone and the initial prompt vectors.",
    ),
    trust_remote_code: bool = trust_remote_code_option(),
) -> None:
    """Draw the last layer's attention (heads averaged) of the pair's generated explanation over the user
    vector, the item vector, <bos> and the words (the paper's Fig. 8); --before shows the untrained model."""
    from pepler_cli.attention import attention_map

    drawn = attention_map(run, user, item, out, before, trust_remote_code)
    tell(f"wrote {drawn['out']} (attention on the user and item vectors: {drawn['prompt_share']:.1%})")
