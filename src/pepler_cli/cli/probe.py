"""``pepler probe``: does the run use the user and the item? Their vectors permuted, what changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pepler_cli.cli.common import clean_up_option, flag, given, report_errors, tell, trust_remote_code_option

if TYPE_CHECKING:
    from pepler_cli.probe import ProbeResult


@report_errors
def probe_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`.", show_default=False),
    data: Path | None = flag("--data", help="Prepared dataset (default: the one the run was trained on)."),
    split: str | None = flag("--split", help="Part to explain: train, validation or test.", default="test"),
    split_number: int | None = flag("--split-number", help="Which split (default: the run's)."),
    out: Path | None = flag("--out", help="Where to write the probe's JSON (default: RUN/probe.json)."),
    limit: int | None = flag("--limit", help="Probe only the first N pairs of the part."),
    seed: int | None = flag("--seed", help="Seed of the permutations.", default=1111),
    max_tokens: int | None = flag(
        "--max-tokens", help="Most tokens per explanation (default: the run's, as generate)."
    ),
    batch_size: int | None = flag("--batch-size", help="Examples decoded together.", default=256),
    device: str | None = flag("--device", help="auto: cuda when available, else cpu.", default="auto"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing probe file."),
    clean_up_spaces: bool | None = clean_up_option(),
    trust_remote_code: bool = trust_remote_code_option(),
) -> None:
    """Does the run use who the user is and what the item is? Explain the pairs as they are, then with the
    user vectors permuted among them, then the item vectors (a discrete-prompt run: its features); report the
    share of explanations that change and BLEU-1/4, FMR and iFMR before and after (greedy decoding)."""
    flags = given(dict(locals()), "overwrite", "trust_remote_code")

    from pepler_cli.cli.progress import counter
    from pepler_cli.config import ProbeConfig, resolve
    from pepler_cli.probe import probe

    config = resolve(ProbeConfig, None, flags)
    with counter("probing") as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        result = probe(config, progress)
    _print(result)
    tell(f"wrote {result.out}")


def _print(result: ProbeResult) -> None:
    from rich.table import Table

    from pepler_cli.console import out_console
    from pepler_cli.probe import MEASURED

    table = Table(title=f"probe: {result.n} pairs", title_justify="left")
    for column in ("explained with", "reassigned", "changed", *MEASURED):
        table.add_column(column, justify="left" if column == "explained with" else "right")
    table.add_row("as trained", "", "", *(f"{result.baseline[k]:.4f}" for k in MEASURED))
    for name, variant in result.variants.items():
        deltas = (f"{variant['scores'][k]:.4f} ({variant['delta'][k]:+.4f})" for k in MEASURED)
        table.add_row(
            f"{name} permuted", f"{variant['reassigned']:.1%}", f"{variant['changed']:.1%}", *deltas
        )
    out_console.print(table)
