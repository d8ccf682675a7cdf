"""``pepler generate``: a trained run explains a split's (user, item) pairs into preds.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli.common import (
    CONFIG_HELP,
    clean_up_option,
    flag,
    given,
    report_errors,
    trust_remote_code_option,
)


@report_errors
def generate_command(
    run: Path = typer.Argument(..., help="Run directory made by `pepler train`."),
    data: Path | None = flag("--data", help="Prepared dataset (default: the one the run was trained on)."),
    split: str | None = flag("--split", help="Part to explain: train, validation or test.", default="test"),
    split_number: int | None = flag(
        "--split-number", help="Which of the dataset's splits (default: the run's)."
    ),
    out: Path | None = flag("--out", help="Where to write the predictions (JSON lines)."),
    max_tokens: int | None = flag(
        "--max-tokens",
        help="Most tokens per explanation (default: the run's: the paper's 20 for PEPLER, 15 words for the "
        "baselines).",
    ),
    decoding: str | None = flag(
        "--decoding", help="greedy (the paper's), beam, top-k or top-p sampling.", default="greedy"
    ),
    beams: int | None = flag("--beams", help="Beam width for --decoding beam.", default=4),
    length_penalty: float | None = flag(
        "--length-penalty",
        help="--decoding beam ranks hypotheses by log-probability / length**this (0: plain sums).",
        default=0,
    ),
    beam_groups: int | None = flag(
        "--beam-groups",
        help="--decoding beam: diverse beam search, the beams split into this many groups decoded in turn "
        "(1: plain beam search).",
        default=1,
    ),
    diversity_penalty: float | None = flag(
        "--diversity-penalty",
        help="With --beam-groups: lower a token's log-probability by this for each beam of an earlier group "
        "that chose it at the same step.",
        default=0.0,
    ),
    no_repeat_ngram: int | None = flag(
        "--no-repeat-ngram",
        help="Every decoding: never repeat an n-gram of this many tokens within an explanation (0: off).",
        default=0,
    ),
    repetition_penalty: float | None = flag(
        "--repetition-penalty",
        help="Every decoding: divide a written token's positive score by this, multiply a negative one "
        "(CTRL's penalty; 1.0: off, 1.2 is usual).",
        default=1.0,
    ),
    top_k: int | None = flag("--top-k", help="Sample among the k likeliest tokens (top-k).", default=50),
    top_p: float | None = flag(
        "--top-p",
        help="Sample from the smallest set of tokens with this much probability (--decoding top-p).",
        default=0.9,
    ),
    temperature: float | None = flag(
        "--temperature", help="Divide the logits by this to sample.", default=1.0
    ),
    seed: int | None = flag("--seed", help="Sampling seed: same seed, same explanations.", default=1111),
    batch_size: int | None = flag("--batch-size", help="Examples decoded together.", default=256),
    limit: int | None = flag("--limit", help="Explain only the first N examples of the part."),
    unknown: str | None = flag(
        "--unknown",
        help="Pairs whose user or item the run never saw in training: error (one line naming them) or skip "
        "(leave them out and say how many).",
        default="error",
    ),
    cold_start: str | None = flag(
        "--cold-start",
        help="What a cold user or item gets (one the run never trained, or, on a --cold-start split, one with at "
        "most K training records): error (as --unknown says), mean (of the trained vectors), neighbours (mean "
        "vector of the 10 trained ones closest in features), features (their words).",
        default="error",
    ),
    history: Path | None = flag(
        "--history",
        help="JSON lines of what is known of cold users and items, for --cold-start neighbours and features: "
        '{"user": ID} or {"item": ID} with "features": [...] and/or "text": "a review".',
    ),
    feature_hint: str | None = flag(
        "--feature-hint",
        help="For a run trained with --feature-hint, the feature in each prompt: given (the test record's own: "
        "an upper bound that reads the test record), predicted (chosen from training data); default: the "
        "run's training mode.",
    ),
    feature_predictor: str | None = flag(
        "--feature-predictor",
        help="--feature-hint predicted: counts (the item's training features by frequency × the user's "
        "affinity) or learned (a scorer on the run's user and item vectors).",
        default="counts",
    ),
    feature: str | None = flag(
        "--feature", help='Explain every pair about this feature (e.g. "sound"): a run trained with hints.'
    ),
    trust_remote_code: bool = trust_remote_code_option(),
    device: str | None = flag("--device", help="auto: cuda when available, else cpu.", default="auto"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing predictions file."),
    clean_up_spaces: bool | None = clean_up_option(),
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Explain a split's (user, item) pairs with a trained run; writes preds.jsonl and preds.meta.yaml."""
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
    err_console.print(
        f"[green]{result.predictions} explanations written:[/] {result.out} "
        f"(split {result.split_number}, {result.split})"
    )
