"""``pepler prepare`` as a library call: a NETE dataset or raw reviews in, a prepared dataset out.

The data package knows no model: the tokenizer that counts explanation tokens is looked up here, through the
backbone plugin the options name, and handed to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pepler_cli.config import PrepareConfig, saved_options
from pepler_cli.data.cold_start import ColdStartSpec
from pepler_cli.data.nete import check_nete_source, prepare_nete
from pepler_cli.data.prepared.writing import PrepareResult, Truncation
from pepler_cli.data.raw import FieldMap, prepare_raw
from pepler_cli.errors import UsageError
from pepler_cli.files import ensure_new_output, output_lock
from pepler_cli.plugins import get_backbone

# Opens a progress display (a rich Progress, or anything with add_task/update) for the slow steps.
ProgressDisplay = Callable[[], AbstractContextManager[Any]]


def prepare(config: PrepareConfig, display: ProgressDisplay | None = None) -> PrepareResult:
    """Prepare ``config.source_or_dataset`` into ``config.output``; returns where, the manifest and statistics.

    The quick checks come before ``display`` is opened, so a mistake is all that is printed.
    """
    if config.kind == "nete":
        check_nete_source(config.source_or_dataset, config.source)
    elif not Path(config.source_or_dataset).is_file():
        raise UsageError(
            f"{config.source_or_dataset}: neither one of the paper's datasets (tripadvisor, amazon, yelp) "
            "nor an existing raw reviews file"
        )
    ensure_new_output(config.output, config.overwrite)
    with output_lock(config.output):
        return _prepare_locked(config, display)


def _prepare_locked(config: PrepareConfig, display: ProgressDisplay | None = None) -> PrepareResult:
    tokenizer = get_backbone(config.tokenizer).load_tokenizer()
    truncation = Truncation(
        tokenizer, config.max_explanation_tokens, config.tokenizer, config.clean_up_spaces
    )
    saved = {**saved_options(config), "name": config.dataset_name, "out": str(config.output)}
    cold_start = ColdStartSpec(config.cold_start, config.seed) if config.cold_start is not None else None
    common: dict[str, Any] = {
        "truncation": truncation,
        "name": config.dataset_name,
        "overwrite": config.overwrite,
        "config": saved,
        "cold_start": cold_start,
    }
    with display() if display is not None else contextlib.nullcontext() as progress:
        if config.kind == "nete":
            return prepare_nete(
                config.source_or_dataset,
                config.source,
                config.output,
                progress=progress,
                allow_unseen=config.allow_unseen,
                **common,
            )
        fields = FieldMap(config.user_field, config.item_field, config.rating_field, config.text_field)
        return prepare_raw(
            Path(config.source_or_dataset),
            config.output,
            fields=fields,
            seed=config.seed,
            progress=progress,
            **common,
        )
