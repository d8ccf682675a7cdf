"""``pepler train``: options in, one library call, progress and a summary out."""

from __future__ import annotations

from pathlib import Path

import typer

from pepler_cli.cli.common import (
    CONFIG_HELP,
    flag,
    given,
    model_options,
    report_errors,
    switch,
    trust_remote_code_option,
)


@report_errors
def train_command(
    data: Path | None = flag("--data", help="Prepared dataset directory (made by `pepler prepare`)."),
    split: int | None = flag(
        "--split", help="Which of the dataset's splits to train on (1..5, or a --cold-start one).", default=1
    ),
    out: Path | None = flag("--out", help="Run directory to create (written atomically when training ends)."),
    model: str | None = flag(
        "--model",
        help="Model plugin (see `pepler plugins`): pepler, or the paper's baselines nrt, att2seq, peter "
        "(with --feature-hint given: PETER+).",
        default="pepler",
    ),
    model_option: list[str] | None = flag(
        "--model-option", help="KEY=VALUE: a model's own hyper-parameter (repeat it; e.g. emsize=256)."
    ),
    prompt: str | None = flag(
        "--prompt",
        help="continuous: learned user/item vectors (PEPLER); discrete: item features as words (PEPLER-D).",
    ),
    strategy: str | None = flag(
        "--strategy",
        help="sequential: prompt, then prompt+LM (continuous default); prompt-only: LM frozen; joint: both "
        "from the start; fixed-prompt: LM only (discrete default); lora: prompt + LoRA adapters on a frozen LM; "
        "sequential-lora: prompt, then prompt + LoRA.",
    ),
    backbone: str | None = flag("--backbone", help="PEPLER's backbone plugin (default: gpt2)."),
    backbone_path: str | None = flag("--backbone-path", help="Hub id or local directory of the backbone."),
    from_scratch: bool | None = typer.Option(
        None,
        "--from-scratch/--pretrained",
        help="Train the backbone's architecture from a seeded random start.",
    ),
    rating_head: str | None = flag(
        "--rating-head", help="Rating head plugin (mf, mlp): rating as regularizer."
    ),
    rating_weight: float | None = flag("--rating-weight", help="λ: weight of the rating MSE.", default=0.01),
    feature_hint: str | None = flag(
        "--feature-hint",
        help="none (PEPLER), or given / predicted: train with each record's feature after the prompt, and "
        "generate with the test record's own (given: reads the test record) or one predicted from training "
        "data (predicted) by default.",
        default="none",
    ),
    learning_rate: float | None = flag(
        "--lr",
        "--learning-rate",
        help="Learning rate (default: the paper's 1e-3 continuous, 1e-4 discrete; a baseline's authors').",
    ),
    batch_size: int | None = flag(
        "--batch-size", help="Examples per batch (default: the paper's 128; a baseline's authors')."
    ),
    epochs: int | None = flag(
        "--epochs", help="Most epochs per stage (early stopping may end it).", default=100
    ),
    patience: int | None = flag("--patience", help="Epochs without a better validation loss.", default=5),
    seed: int | None = flag("--seed", help="Random seed: same seed, same data, same run.", default=1111),
    max_train_examples: int | None = flag(
        "--max-train-examples", help="Use a seeded random N of the train part."
    ),
    lora_rank: int | None = flag("--lora-rank", help="Rank of the LoRA adapters.", default=8),
    lora_alpha: float | None = flag("--lora-alpha", help="LoRA scaling: alpha / rank.", default=16),
    lora_dropout: float | None = flag("--lora-dropout", help="Dropout on the adapters' input.", default=0.05),
    lora_targets: str | None = flag(
        "--lora-targets", help="Modules to adapt, comma-separated (default: per model)."
    ),
    bucket_by_length: bool | None = typer.Option(
        None,
        "--bucket-by-length/--no-bucket-by-length",
        help="Batch explanations of similar length together (less padding; batches differ from the paper's).",
    ),
    device: str | None = flag("--device", help="auto: cuda when available, else cpu.", default="auto"),
    precision: str | None = flag(
        "--precision", help="fp32 or bf16 (autocast); auto: bf16 on a CUDA GPU.", default="auto"
    ),
    overwrite: bool = switch(
        "--overwrite",
        "Replace an existing run (once the new one is complete); discard an interrupted one's checkpoint.",
    ),
    resume: bool = switch(
        "--resume",
        "Continue an interrupted run from <out>.checkpoint (saved after every epoch, every --checkpoint-every steps "
        "and on SIGTERM/SIGINT) with the same options; starts afresh when there is none.",
    ),
    checkpoint_every: int | None = flag(
        "--checkpoint-every", help="Also checkpoint every N steps inside an epoch."
    ),
    grad_accum: int | None = flag(
        "--grad-accum",
        help="K micro-batches per step (per rank), gradients added: a big batch on a small GPU.",
        default=1,
    ),
    logger: str | None = flag(
        "--logger",
        help="Scalars for tensorboard or csv in the run's logs/; auto: tensorboard if installed.",
        default="auto",
    ),
    fsdp: bool = switch(
        "--fsdp", "Under torchrun, shard a fully tuned backbone over the GPUs (LoRA, prompt-only: DDP)."
    ),
    allow_unseen: bool = switch(
        "--allow-unseen",
        "Train although validation/test records have users or items the training part never holds.",
    ),
    trust_remote_code: bool = trust_remote_code_option(),
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Train PEPLER (or a baseline: --model) on a prepared dataset and write a run directory."""
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags = given(flags, "overwrite", "resume", "allow_unseen", "trust_remote_code", "fsdp")
    flags.pop("config_file")
    if model_option is not None:
        flags["model_options"] = model_options(flags.pop("model_option"))
    else:
        flags.pop("model_option")
    if lora_targets is not None:
        flags["lora_targets"] = [name.strip() for name in lora_targets.split(",") if name.strip()]

    from pepler_cli.cli.progress import say_how_to_resume, training_display, training_summary
    from pepler_cli.config import TrainConfig, resolve
    from pepler_cli.training.train import train

    config = resolve(TrainConfig, config_file, flags)
    with say_how_to_resume(config.out, config.resume), training_display() as reporter:
        manifest = train(config, reporter=reporter)
    training_summary(manifest, config.out)
