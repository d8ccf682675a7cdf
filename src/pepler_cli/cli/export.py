"""``pepler export``: a run as a standard Hugging Face model directory, LoRA merged, with its prompt beside it."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli.common import report_errors, trust_remote_code_option


@report_errors
def export_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`."),
    out: Path = typer.Option(..., "--out", help="Directory to write (atomically)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
    trust_remote_code: bool = trust_remote_code_option(),
) -> None:
    """Export a run for use elsewhere: a model directory that transformers' from_pretrained loads (LoRA adapters
    merged), its tokenizer, the prompt's tensors (pepler_prompt.safetensors, users.txt, items.txt) and
    pepler_export.yaml, which says how the input is built."""
    from pepler_cli.console import err_console
    from pepler_cli.export import export

    description = export(run, out, overwrite, trust_remote_code)
    merged = " (LoRA merged)" if description["lora_merged"] else ""
    err_console.print(
        f"exported {run} to {out}{merged}; input: {description['input']}", soft_wrap=True, markup=False
    )
