"""``pepler generate``: a trained run explains a split's (user, item) pairs into preds.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli import explaining_options as options
from pepler_cli.cli.common import CONFIG_HELP, flag, given, report_errors


@report_errors
def generate_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`."),
    data: Path | None = flag("--data", help="Prepared dataset (default: the one the run was trained on)."),
    split: str | None = flag("--split", help="Part to explain: train, validation or test.", default="test"),
    split_number: int | None = flag(
        "--split-number", help="Which of the dataset's splits (default: the run's)."
    ),
    pairs: Path | None = flag(
        "--pairs",
        help="Explain these pairs instead of a part of a split: JSON lines or .csv with user, item, and optionally "
        "feature (the feature to explain by), reference, rating.",
    ),
    out: Path | None = flag("--out", help="Where to write the predictions (JSON lines)."),
    max_tokens: int | None = options.MAX_TOKENS,
    decoding: str | None = options.DECODING,
    beams: int | None = options.BEAMS,
    length_penalty: float | None = options.LENGTH_PENALTY,
    beam_groups: int | None = options.BEAM_GROUPS,
    diversity_penalty: float | None = options.DIVERSITY_PENALTY,
    no_repeat_ngram: int | None = options.NO_REPEAT_NGRAM,
    repetition_penalty: float | None = options.REPETITION_PENALTY,
    top_k: int | None = options.TOP_K,
    top_p: float | None = options.TOP_P,
    temperature: float | None = options.TEMPERATURE,
    seed: int | None = options.SEED,
    batch_size: int | None = options.BATCH_SIZE,
    limit: int | None = flag("--limit", help="Explain only the first N examples of the part."),
    unknown: str | None = options.UNKNOWN,
    cold_start: str | None = options.COLD_START,
    history: Path | None = options.HISTORY,
    feature_hint: str | None = options.FEATURE_HINT,
    feature_predictor: str | None = options.FEATURE_PREDICTOR,
    feature: str | None = options.FEATURE,
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    device: str | None = options.DEVICE,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing predictions file."),
    clean_up_spaces: bool | None = options.CLEAN_UP_SPACES,
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Explain a split's (user, item) pairs, or those of a file (--pairs), with a trained run; writes preds.jsonl
    and preds.meta.yaml."""
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags = given(flags, "overwrite", "trust_remote_code")

    from pepler_cli.cli.progress import counter
    from pepler_cli.config import GenerateConfig, resolve
    from pepler_cli.console import err_console
    from pepler_cli.distributed import launched_world
    from pepler_cli.generation.generate import generate

    config = resolve(GenerateConfig, config_file, flags)
    if not launched_world().is_main:  # under torchrun, rank 0 alone shows progress and writes
        generate(config)
        return
    with counter("generating") as bar:
        task = bar.add_task("generate", total=None)
        result = generate(config, lambda done, total: bar.update(task, completed=done, total=total))
    for line in result.notes(config.cold_start):
        err_console.print(line, highlight=False, soft_wrap=True)
    source = f"pairs of {config.pairs}" if config.pairs else f"split {result.split_number}, {result.split}"
    err_console.print(f"[green]{result.predictions} explanations written:[/] {result.out} ({source})")
