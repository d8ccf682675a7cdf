"""``pepler prepare``: a NETE dataset or raw reviews in, a prepared dataset ``data/<name>/`` out."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pepler_cli.cli.common import CONFIG_HELP, clean_up_option, flag, report_errors
from pepler_cli.paper import MAX_EXPLANATION_TOKENS, TRUNCATION_TOKENIZER


@report_errors
def prepare_command(
    source_or_dataset: str | None = typer.Argument(
        None,
        metavar="SOURCE_OR_DATASET",
        help="tripadvisor | amazon | yelp (needs --source), or a raw reviews file (needs --name).",
        show_default=False,
    ),
    source: Path | None = flag(
        "--source", help="Folder of a downloaded NETE dataset: DIR/reviews.pickle, DIR/1..5/*.index."
    ),
    name: str | None = flag(
        "--name", help="Dataset name (required for raw reviews); default output folder is data/NAME."
    ),
    out: Path | None = flag("--out", help="Output folder.", default="data/<name>"),
    overwrite: bool | None = typer.Option(
        None,
        "--overwrite/--no-overwrite",
        help="Replace an existing output folder. (default: no)",
        show_default=False,
    ),
    seed: int | None = flag(
        "--seed",
        help="Seed of the five random 8:1:1 splits (raw reviews) and of the --cold-start splits.",
        default=1234,
    ),
    user_field: str | None = flag(
        "--user-field", help="Raw reviews: field with the user id.", default="reviewerID"
    ),
    item_field: str | None = flag(
        "--item-field", help="Raw reviews: field with the item id.", default="asin"
    ),
    rating_field: str | None = flag(
        "--rating-field", help="Raw reviews: field with the rating.", default="overall"
    ),
    text_field: str | None = flag(
        "--text-field", help="Raw reviews: field with the review text.", default="reviewText"
    ),
    max_explanation_tokens: int | None = flag(
        "--max-explanation-tokens",
        help="BPE tokens kept per explanation (the paper's).",
        default=MAX_EXPLANATION_TOKENS,
    ),
    tokenizer: str | None = flag(
        "--tokenizer",
        help="Backbone plugin whose tokenizer counts those tokens (the paper: GPT-2's).",
        default=TRUNCATION_TOKENIZER,
    ),
    clean_up_spaces: bool | None = clean_up_option(),
    allow_unseen: bool = typer.Option(
        False,
        "--allow-unseen",
        help="Keep a NETE split although its validation or test records have a user or item that its training "
        "part never holds (counted in the manifest); without it such a split is refused.",
    ),
    cold_start: int | None = flag(
        "--cold-start",
        help="Add two splits after the regular ones: one whose test part holds only cold users (about 10% of the "
        "records; each keeps a random 0..K of its records in training, 0 = never seen) and one for cold items.",
    ),
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the written manifest as JSON on stdout."),
) -> None:
    """Prepare a dataset for training: records.jsonl, features.txt, five splits and a manifest.

    SOURCE_OR_DATASET is one of the paper's datasets — tripadvisor, amazon or yelp — read from its NETE
    folder given with --source (reviews.pickle and splits 1..5, kept as they are), or a raw reviews file (JSON
    lines or CSV, optionally .gz) given with --name, whose explanations are extracted and split 8:1:1 five
    times. Explanations are cut to 20 GPT-2 tokens. Statistics (the paper's Table 4 columns) go to stderr.
    --cold-start K adds splits 6 (cold users) and 7 (cold items) for `pepler generate --cold-start`.
    """
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags.pop("json_output")
    flags["allow_unseen"] = allow_unseen or None  # unset: a config file's value stands

    from pepler_cli.cli.progress import bars
    from pepler_cli.config import PrepareConfig, resolve
    from pepler_cli.console import err_console, out_console
    from pepler_cli.data.stats import PAPER_TABLE4, statistics_table
    from pepler_cli.preparation import prepare

    config = resolve(PrepareConfig, config_file, flags)
    result = prepare(config, bars)
    manifest = result.manifest
    paper = PAPER_TABLE4.get(config.source_or_dataset) if config.kind == "nete" else None
    err_console.print(statistics_table(manifest["name"], result.statistics, paper))
    counts = manifest["counts"]
    err_console.print(
        f"prepared [bold]{result.out}[/]: {counts['records']:,} records of {counts['reviews_read']:,} read "
        f"({counts['reviews_dropped']:,} dropped); fingerprint {manifest['fingerprint'][:16]}…",
        highlight=False,
        soft_wrap=True,
    )
    # The reasons, not their total (dropped_no_explanation).
    reasons = {
        k[8:]: v
        for k, v in counts.items()
        if k.startswith("dropped_") and k != "dropped_no_explanation" and v
    }
    if reasons:
        dropped = ", ".join(f"{count:,} {reason.replace('_', ' ')}" for reason, count in reasons.items())
        err_console.print(f"dropped: {dropped}", highlight=False, soft_wrap=True)
    unseen = manifest["splits"].get("unseen")
    if unseen:
        kept = "; ".join(
            f"split {k} {part}: {found['users']} with an unseen user, {found['items']} with an unseen item"
            for k, parts in unseen.items()
            for part, found in parts.items()
        )
        err_console.print(f"kept (--allow-unseen): {kept}", highlight=False, soft_wrap=True)
    for k, entry in (manifest["splits"].get("cold_start") or {}).items():
        kind, cold = entry["kind"], entry[f"cold_{entry['kind']}s"]
        err_console.print(
            f"split {k}: {cold:,} cold {kind}{'s' if cold != 1 else ''} in test, at most {entry['max_train_records']} "
            f"training records each ({entry['never_seen']:,} never seen in training)",
            highlight=False,
            soft_wrap=True,
        )
    if json_output:
        out_console.print_json(json.dumps({"out": str(result.out), "manifest": manifest}))
