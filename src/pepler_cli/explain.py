"""``pepler generate`` as a library call: a finished run explains one part of a split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pepler_cli.config import GenerateConfig
from pepler_cli.errors import PeplerError


def generate_predictions(config: GenerateConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Decode explanations for ``config.split`` (train, validation or test) of the split and write preds.jsonl; returns a summary."""
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
    source = str(Path(data_path) / "records.jsonl")
    users = [run.entities.user_row(r.user, f"{source} record {n}") for n, r in zip(numbers, records)]
    items = [run.entities.item_row(r.item, f"{source} record {n}") for n, r in zip(numbers, records)]

    special = special_tokens(run.tokenizer)
    options = DecodeOptions(max_tokens=config.max_tokens, batch_size=config.batch_size)
    texts: list[str] = []
    for ids in decode_in_batches(run.model, users, items, special.bos, special.eos, device, options):
        texts.extend(run.tokenizer.batch_decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        if progress:
            progress(len(texts), len(records))
    ratings = _predicted_ratings(run.model, users, items, device, config.batch_size)
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
    return {"predictions": len(predictions), "out": str(config.out), "split_number": split_number, "split": config.split}


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
