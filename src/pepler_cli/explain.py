"""``pepler generate`` as a library call: a finished run explains one part of a split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pepler_cli.config import GenerateConfig
from pepler_cli.errors import PeplerError


def generate_predictions(config: GenerateConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Explain ``config.split`` (train, validation or test) of a split; write preds.jsonl; return a summary."""
    from pepler_cli.data.prepared import load_prepared
    from pepler_cli.devices import resolve_device
    from pepler_cli.generation import DecodeOptions, decode_in_batches
    from pepler_cli.predictions import Prediction, write_predictions
    from pepler_cli.runs import load_run
    from pepler_cli.training.examples import special_tokens

    if config.out.exists() and not config.overwrite:
        raise PeplerError(f"{config.out}: already exists; choose another --out or pass --overwrite")
    device = resolve_device(config.device)
    run = load_run(config.run, device)
    data_path = config.data or Path(run.manifest["dataset"]["path"])
    dataset = load_prepared(data_path)
    split_number = config.split_number or int(run.manifest["dataset"]["split"])
    if split_number not in dataset.splits:
        raise PeplerError(f"{data_path}: has no split {split_number}", exit_code=2)
    part = dict(zip(("train", "validation", "test"), dataset.splits[split_number]))[config.split]
    numbers = part[: config.limit] if config.limit else part
    records = [dataset.records[n] for n in numbers]
    inputs = _prompt_inputs(run, dataset, split_number, numbers, Path(data_path) / "records.jsonl")

    special = special_tokens(run.tokenizer)
    options = DecodeOptions.from_config(config)
    texts: list[str] = []
    for ids in decode_in_batches(run.model, inputs, special.bos, special.eos, device, options):
        texts.extend(run.tokenizer.batch_decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        if progress:
            progress(len(texts), len(records))
    ratings = _predicted_ratings(run.model, inputs.users.tolist(), inputs.items.tolist(), device, config.batch_size)
    predictions = [
        Prediction(
            user=r.user,
            item=r.item,
            reference=r.text,
            generated=text.strip(),
            feature=r.feature,
            rating=float(r.rating),
            predicted_rating=ratings[k] if ratings is not None else None,
        )
        for k, (r, text) in enumerate(zip(records, texts))
    ]
    write_predictions(config.out, predictions)
    write_predictions_meta(config, run.path, run.manifest, data_path, dataset.fingerprint, split_number, len(predictions))
    return {"predictions": len(predictions), "out": str(config.out), "split_number": split_number, "split": config.split}


def _prompt_inputs(run: Any, dataset: Any, split_number: int, numbers: list[int], source: Path) -> Any:
    """Every example's prompt, on the host: ids for a continuous prompt, feature tokens for a discrete one."""
    import torch

    from pepler_cli.data.feature_prompts import FeatureIndex
    from pepler_cli.modeling.batch import PromptInputs, pad_left
    from pepler_cli.training.examples import discrete_prompt_ids, special_tokens

    records = [dataset.records[n] for n in numbers]
    users = [run.entities.user_row(r.user, f"{source} record {n}") for n, r in zip(numbers, records)]
    items = [run.entities.item_row(r.item, f"{source} record {n}") for n, r in zip(numbers, records)]
    inputs = PromptInputs(torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long))
    if run.model.prompt_kind == "discrete" and records:
        # Features come from the training part of the split only, as when the run was trained.
        features = FeatureIndex.from_training(dataset.records, dataset.splits[split_number][0])
        prompt_ids = discrete_prompt_ids(records, run.tokenizer, features)
        inputs.prompt_tokens, inputs.prompt_mask = pad_left(prompt_ids, special_tokens(run.tokenizer).pad)
    return inputs


def _predicted_ratings(model: Any, users: list[int], items: list[int], device: Any, batch_size: int) -> list[float] | None:
    import torch

    if model.rating_head is None:
        return None
    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(users), batch_size):
            u = torch.as_tensor(users[start : start + batch_size], device=device)
            i = torch.as_tensor(items[start : start + batch_size], device=device)
            out.extend(model.predict_ratings(u, i).float().cpu().tolist())
    return out


def predictions_meta_path(predictions: Path) -> Path:
    """``preds.jsonl`` → ``preds.meta.yaml``: where generate records what made the predictions."""
    predictions = Path(predictions)
    stem = predictions.name[: -len(".jsonl")] if predictions.name.endswith(".jsonl") else predictions.name
    return predictions.with_name(f"{stem}.meta.yaml")


def write_predictions_meta(
    config: GenerateConfig,
    run_path: Path,
    run_manifest: dict[str, Any],
    data_path: Path,
    data_fingerprint: str,
    split_number: int,
    count: int,
) -> None:
    """The provenance of a preds.jsonl: run, dataset, split and decoding; `pepler score` carries it on."""
    import shlex
    import sys
    from datetime import datetime, timezone

    import yaml

    import pepler_cli
    from pepler_cli.fsutil import atomic_write_text, sha256_file

    run_config = run_manifest.get("config", {})
    meta = {
        "format": "pepler-predictions-meta/1",
        "pepler_version": pepler_cli.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["pepler", *sys.argv[1:]]),
        "config": config.model_dump(mode="json"),
        "run": {
            "path": str(Path(run_path).resolve()),
            "name": run_manifest.get("name"),
            "prompt": run_config.get("prompt"),
            "strategy": run_config.get("strategy"),
            "rating_head": run_config.get("rating_head"),
            "backbone": run_config.get("backbone"),
        },
        "dataset": {
            "path": str(data_path),
            "fingerprint": data_fingerprint,
            "split_number": split_number,
            "split": config.split,
        },
        "predictions": {"path": str(config.out), "count": count, "sha256": sha256_file(config.out)},
    }
    atomic_write_text(predictions_meta_path(config.out), yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
