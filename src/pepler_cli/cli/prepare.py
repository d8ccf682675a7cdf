"""``pepler prepare``: a NETE dataset or raw reviews in, a prepared dataset ``data/<name>/`` out.

Only typer and the standard library are imported at module level, so ``pepler --help`` stays instant; the
data code (and through it transformers) is imported when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pepler_cli.cli.common import report_errors


@report_errors
def prepare_command(
    source_or_dataset: Annotated[
        str | None,
        typer.Argument(
            metavar="SOURCE_OR_DATASET",
            help="tripadvisor | amazon | yelp (needs --source), or a raw reviews file (needs --name).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="Folder of a downloaded NETE dataset: DIR/reviews.pickle, DIR/1..5/*.index.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Dataset name (required for raw reviews); default output folder is data/NAME.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder. (default: data/<name>)", show_default=False),
    ] = None,
    overwrite: Annotated[
        bool | None,
        typer.Option(
            "--overwrite/--no-overwrite",
            help="Replace an existing output folder. (default: no)",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the five random 8:1:1 splits (raw reviews). (default: 1234)",
            show_default=False,
        ),
    ] = None,
    user_field: Annotated[
        str | None,
        typer.Option(
            "--user-field",
            help="Raw reviews: field with the user id. (default: reviewerID)",
            show_default=False,
        ),
    ] = None,
    item_field: Annotated[
        str | None,
        typer.Option(
            "--item-field", help="Raw reviews: field with the item id. (default: asin)", show_default=False
        ),
    ] = None,
    rating_field: Annotated[
        str | None,
        typer.Option(
            "--rating-field",
            help="Raw reviews: field with the rating. (default: overall)",
            show_default=False,
        ),
    ] = None,
    text_field: Annotated[
        str | None,
        typer.Option(
            "--text-field",
            help="Raw reviews: field with the review text. (default: reviewText)",
            show_default=False,
        ),
    ] = None,
    max_explanation_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-explanation-tokens",
            help="GPT-2 BPE tokens kept per explanation (the paper uses 20). (default: 20)",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file whose keys are these option names; flags given here win.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the written manifest as JSON on stdout."),
    ] = False,
) -> None:
    """Prepare a dataset for training: records.jsonl, features.txt, five splits and a manifest.

    SOURCE_OR_DATASET is one of the paper's datasets — tripadvisor, amazon or yelp — read from its NETE
    folder given with --source (reviews.pickle and splits 1..5, kept as they are), or a raw reviews file (JSON
    lines or CSV, optionally .gz) given with --name, whose explanations are extracted and split 8:1:1 five
    times. Explanations are cut to 20 GPT-2 tokens. Statistics (the paper's Table 4 columns) go to stderr.
    """
    from pepler_cli.config_prepare import resolve_prepare_config

    resolved = resolve_prepare_config(
        {
            "source_or_dataset": source_or_dataset,
            "source": source,
            "name": name,
            "out": out,
            "overwrite": overwrite,
            "seed": seed,
            "user_field": user_field,
            "item_field": item_field,
            "rating_field": rating_field,
            "text_field": text_field,
            "max_explanation_tokens": max_explanation_tokens,
        },
        config,
    )
    result = run_prepare(resolved)

    from pepler_cli.console import err_console, out_console
    from pepler_cli.data.stats import print_statistics

    manifest = result.manifest
    print_statistics(
        manifest["name"], result.statistics, resolved.source_or_dataset if resolved.kind == "nete" else None
    )
    counts = manifest["counts"]
    err_console.print(
        f"prepared [bold]{result.out}[/]: {counts['records']:,} records of {counts['reviews_read']:,} read "
        f"({counts['reviews_dropped']:,} dropped); fingerprint {manifest['fingerprint'][:16]}…",
        highlight=False,
        soft_wrap=True,
    )
    if json_output:
        out_console.print_json(json.dumps({"out": str(result.out), "manifest": manifest}))


def run_prepare(config: Any) -> Any:
    """Run a resolved :class:`~pepler_cli.config_prepare.PrepareConfig`, with progress bars on stderr."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from pepler_cli.console import err_console
    from pepler_cli.errors import PeplerError, UsageError

    saved = config.model_dump(mode="json")
    saved.update(name=config.dataset_name, out=str(config.output))
    # The quick checks come before the progress display, so their message is all that is printed.
    if config.kind == "nete":
        from pepler_cli.data.nete import check_nete_source

        check_nete_source(config.source_or_dataset, config.source)
    elif not Path(config.source_or_dataset).is_file():
        raise UsageError(
            f"{config.source_or_dataset}: neither one of the paper's datasets (tripadvisor, amazon, yelp) "
            "nor an existing raw reviews file"
        )
    if config.output.exists() and not config.overwrite:
        raise PeplerError(f"{config.output}: already exists; choose another --out or pass --overwrite")

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as progress:
        if config.kind == "nete":
            from pepler_cli.data.nete import prepare_nete

            return prepare_nete(
                config.source_or_dataset,
                config.source,
                config.output,
                name=config.dataset_name,
                overwrite=config.overwrite,
                max_explanation_tokens=config.max_explanation_tokens,
                config=saved,
                progress=progress,
            )
        from pepler_cli.data.raw import FieldMap, prepare_raw

        return prepare_raw(
            Path(config.source_or_dataset),
            config.output,
            name=config.dataset_name,
            fields=FieldMap(config.user_field, config.item_field, config.rating_field, config.text_field),
            seed=config.seed,
            overwrite=config.overwrite,
            max_explanation_tokens=config.max_explanation_tokens,
            config=saved,
            progress=progress,
        )
