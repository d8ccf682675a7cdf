"""``pepler train``: options in, one library call, progress and a summary out."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from pepler_cli.cli.common import CONFIG_HELP, flag, report_errors


@report_errors
def train_command(
    data: Path | None = flag("--data", help="Prepared dataset directory (made by `pepler prepare`)."),
    split: int | None = flag("--split", help="Which of the dataset's five splits to train on.", default=1),
    out: Path | None = flag("--out", help="Run directory to create (written atomically when training ends)."),
    prompt: str | None = flag(
        "--prompt",
        help="continuous: learned user/item vectors (PEPLER); discrete: item features as words (PEPLER-D).",
        default="continuous",
    ),
    strategy: str | None = flag(
        "--strategy",
        help="sequential: prompt, then prompt+LM (continuous default); prompt-only: LM frozen; joint: both "
        "from the start; fixed-prompt: LM only (discrete default); lora: prompt + LoRA adapters on a frozen LM; "
        "sequential-lora: prompt, then prompt + LoRA.",
    ),
    backbone: str | None = flag("--backbone", help="Backbone plugin (see `pepler plugins`).", default="gpt2"),
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
    learning_rate: float | None = flag(
        "--lr",
        "--learning-rate",
        help="AdamW learning rate (default: the paper's 1e-3 continuous, 1e-4 discrete).",
    ),
    batch_size: int | None = flag("--batch-size", help="Examples per batch (paper: 128).", default=128),
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
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an existing run directory (only after the new run is complete) and discard an interrupted "
        "run's checkpoint.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run from its checkpoint (<out>.checkpoint, saved after every epoch, every "
        "--checkpoint-every steps and on SIGTERM/SIGINT) with the same options; starts afresh when there is none.",
    ),
    checkpoint_every: int | None = flag(
        "--checkpoint-every", help="Also save the checkpoint every N optimizer steps inside an epoch."
    ),
    grad_accum: int | None = flag(
        "--grad-accum",
        help="Split each batch into K micro-batches (per rank) whose gradients add up: the paper's batch of "
        "128 on a small GPU, same result.",
        default=1,
    ),
    logger: str | None = flag(
        "--logger",
        help="Training scalars (losses, perplexity, throughput) for TensorBoard or a CSV file, in the run's logs/ "
        "(<out>.logs while training); auto: tensorboard when installed, else csv; none.",
        default="auto",
    ),
    fsdp: bool = typer.Option(
        False,
        "--fsdp",
        help="Under torchrun, shard the backbone over the GPUs (FSDP) in stages that tune it fully: for a model "
        "too large for one GPU. LoRA and prompt-only runs use DDP.",
    ),
    allow_unseen: bool = typer.Option(
        False,
        "--allow-unseen",
        help="Train although validation or test records of the split have a user or item that the training "
        "part never holds (their vectors stay untrained; `generate --unknown skip` leaves them out).",
    ),
    trust_remote_code: bool = typer.Option(
        False,
        "--trust-remote-code",
        help="Let a hub backbone run the code it ships (config.json auto_map), for models that need it; the run "
        "records it, so generate and export load it the same way. Only for models you trust.",
    ),
    config_file: Path | None = flag("--config", help=CONFIG_HELP),
) -> None:
    """Train PEPLER on a prepared dataset and write a run directory."""
    flags = dict(locals())  # first statement: exactly the options, before any import adds names
    flags.pop("config_file")
    flags["overwrite"] = overwrite or None  # unset flags leave a config file's value alone
    flags["resume"] = resume or None
    flags["allow_unseen"] = allow_unseen or None
    flags["trust_remote_code"] = trust_remote_code or None
    flags["fsdp"] = fsdp or None
    if lora_targets is not None:
        flags["lora_targets"] = [name.strip() for name in lora_targets.split(",") if name.strip()]

    from pepler_cli.cli.progress import TrainingProgress
    from pepler_cli.config import TrainConfig, resolve
    from pepler_cli.console import err_console
    from pepler_cli.distributed import launched_world
    from pepler_cli.training.checkpoint import checkpoint_dir
    from pepler_cli.training.loop import SilentReporter
    from pepler_cli.training.train import train

    config = resolve(TrainConfig, config_file, flags)
    checkpoint = checkpoint_dir(config.out)
    main = launched_world().is_main  # under torchrun, rank 0 alone shows progress and the summary
    if config.resume and checkpoint.exists() and main:
        err_console.print(f"resuming from {checkpoint}")
    try:
        with TrainingProgress(err_console) if main else contextlib.nullcontext(SilentReporter()) as reporter:
            manifest = train(config, reporter=reporter)
    except KeyboardInterrupt:
        if not checkpoint.exists():
            raise  # nothing finished yet: the usual message
        err_console.print(
            f"[bold red]interrupted[/]: the last checkpoint is in {checkpoint}; run the same command with "
            "--resume to continue"
        )
        raise typer.Exit(code=130) from None
    if not main:
        return
    for stage in manifest["stages"]:
        err_console.print(
            f"stage [bold]{stage['name']}[/]: best epoch {stage['best_epoch']}, "
            f"validation loss {stage['best_valid_loss']:.4f} ({stage['stopped']})"
        )
    err_console.print(f"[green]run written:[/] {config.out}")
