"""``pepler probe RUN``: does the model use who the user is and what the item is?

The run explains a split's test pairs three times with greedy decoding: as they are; with the user vectors
permuted among the test records (each record keeps its item and reference, gets another record's user); then
with the item vectors permuted likewise. A discrete-prompt run (PEPLER-D) has no user or item vector in its
prompt, so its item features are permuted among the records instead. A model that personalizes changes many
explanations when the user changes; one that ignores the user changes none.

For each permutation it reports: ``reassigned`` (records whose user, item or features actually differ after
the permutation: the same user may appear twice), ``changed`` (explanations that differ from the unpermuted
ones), and BLEU-1/4, FMR and iFMR against the records' references and features, with their change. The
permutations are drawn from ``seed``: the same seed, the same probe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

import pepler_cli
from pepler_cli.config import GenerateConfig, ProbeConfig
from pepler_cli.data.prepared.records import PreparedDataset
from pepler_cli.distributed import World
from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.metrics import explainability, grounding
from pepler_cli.evaluation.metrics.mentions import FeatureMatcher
from pepler_cli.evaluation.metrics.tokens import normalize
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.evaluation.training_view import TrainingView
from pepler_cli.files import atomic_write_text, ensure_new_output, output_lock
from pepler_cli.generation import generate as generation
from pepler_cli.generation.decode import DecodeOptions
from pepler_cli.generation.explainer import decode_texts
from pepler_cli.generation.hints import hint_plan
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.predictions import Prediction
from pepler_cli.run_model import LoadedRun, load_run
from pepler_cli.text_cleanup import clean_up_spaces

PROBE_FORMAT = "pepler-probe/1"
PROBE_FILE = "probe.json"
MEASURED = ("bleu_1", "bleu_4", "fmr", "ifmr")
SAMPLES = 5  # changed explanations kept per permutation, to read

Progress = Callable[[str, int, int], None]


@dataclass
class ProbeResult:
    out: Path
    n: int
    baseline: dict[str, float]
    variants: dict[str, dict[str, Any]]  # "users", "items" or "features" -> what the permutation did


def probe(config: ProbeConfig, progress: Progress | None = None) -> ProbeResult:
    """Explain the pairs as they are and under each permutation; write and return what changed."""
    out = config.out if config.out is not None else Path(config.run) / PROBE_FILE
    ensure_new_output(out, config.overwrite)
    with output_lock(out):
        return _probe(config, out, progress)


def _probe(config: ProbeConfig, out: Path, progress: Progress | None) -> ProbeResult:
    from pepler_cli.devices import resolve_device

    device = resolve_device(config.device)
    run = load_run(config.run, device, config.trust_remote_code)
    generate_config = _as_generate_config(config, out)
    pairs = generation.explained_pairs(generate_config, run)
    dataset, data_path, split_number, numbers = (
        pairs.dataset,
        pairs.data_path,
        pairs.split_number,
        pairs.numbers,
    )
    if len(numbers) < 2:
        raise PeplerError(
            f"{config.run}: probing needs at least two known pairs to permute, found {len(numbers)}"
        )
    inputs = generation.prompt_inputs(run, dataset, split_number, numbers, data_path / "records.jsonl")
    records = [dataset.records[n] for n in numbers]
    # A run trained with hints is probed with its own mode's hints; they stay with their pairs when the users
    # or items are permuted.
    plan = hint_plan(generate_config, run)
    generation.with_hints(run, inputs, plan, dataset, dataset.splits[split_number][0], records)
    training = TrainingView.of(dataset, split_number)
    matcher = FeatureMatcher(dataset.features)
    options = DecodeOptions.from_config(generate_config, run.max_tokens)

    def explain(name: str, prompt: PromptInputs) -> list[Prediction]:
        tick = (lambda done, total: progress(name, done, total)) if progress else None
        texts = decode_texts(run, prompt, device, options, tick, World())
        texts = [clean_up_spaces(t) if config.clean_up_spaces else t for t in texts]
        return [
            Prediction(r.user, r.item, r.text, text.strip(), r.feature, float(r.rating))
            for r, text in zip(records, texts, strict=True)
        ]

    baseline = explain("as trained", inputs)
    baseline_scores = _measure(baseline, dataset, training, matcher)
    generator = torch.Generator().manual_seed(config.seed)
    variants: dict[str, dict[str, Any]] = {}
    for name in _permuted_parts(run):
        order = torch.randperm(len(numbers), generator=generator)
        permuted, reassigned = _permute(inputs, name, order)
        explained = explain(f"{name} permuted", permuted)
        variants[name] = _variant(
            baseline, explained, baseline_scores, reassigned, dataset, training, matcher
        )
    document = {
        "format": PROBE_FORMAT,
        "pepler_version": pepler_cli.__version__,
        "run": str(Path(config.run).resolve()),
        "dataset": {"path": str(data_path), "fingerprint": dataset.fingerprint, "split_number": split_number,
                    "split": config.split},
        "n": len(numbers),
        "seed": config.seed,
        "feature_hint": plan.record(),
        "baseline": baseline_scores,
        "variants": variants,
    }  # fmt: skip
    atomic_write_text(out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return ProbeResult(out, len(numbers), baseline_scores, variants)


def _as_generate_config(config: ProbeConfig, out: Path) -> GenerateConfig:
    """The probe explains pairs as ``pepler generate`` would (greedy, the run's own split by default);
    pairs the run never trained are left out, as permuting them says nothing."""
    return GenerateConfig(
        run=config.run,
        data=config.data,
        split=config.split,
        split_number=config.split_number,
        out=out,
        max_tokens=config.max_tokens,
        batch_size=config.batch_size,
        limit=config.limit,
        unknown="skip",
        device=config.device,
        clean_up_spaces=config.clean_up_spaces,
        trust_remote_code=config.trust_remote_code,
    )


def _permuted_parts(run: LoadedRun) -> tuple[str, ...]:
    return ("features",) if run.model.prompt_kind == "discrete" else ("users", "items")


def _permute(inputs: PromptInputs, part: str, order: torch.Tensor) -> tuple[PromptInputs, float]:
    """``inputs`` with one part's rows reordered by ``order``, and the share of rows that really changed."""
    if part == "users":
        moved = inputs.users[order]
        return replace(inputs, users=moved), _share_differing(inputs.users, moved)
    if part == "items":
        moved = inputs.items[order]
        return replace(inputs, items=moved), _share_differing(inputs.items, moved)
    assert inputs.prompt_tokens is not None and inputs.prompt_mask is not None  # a discrete prompt
    tokens, mask = inputs.prompt_tokens[order], inputs.prompt_mask[order]
    differing = (tokens != inputs.prompt_tokens).any(dim=1) | (mask != inputs.prompt_mask).any(dim=1)
    return replace(inputs, prompt_tokens=tokens, prompt_mask=mask), float(differing.float().mean())


def _share_differing(before: torch.Tensor, after: torch.Tensor) -> float:
    return float((before != after).float().mean())


def _measure(
    predictions: list[Prediction], dataset: PreparedDataset, training: TrainingView, matcher: FeatureMatcher
) -> dict[str, float]:
    """BLEU-1/4 and FMR as the paper computes them; iFMR with phrase-aware mentions (evaluation/beyond.py)."""
    paper = score_predictions(predictions, set(dataset.features), None)
    mentioned = matcher.find_all([normalize(p.generated) for p in predictions])
    ifmr = grounding.item_feature_mention_ratio(
        mentioned, [p.item for p in predictions], training.item_features
    )
    return {"bleu_1": paper["bleu_1"], "bleu_4": paper["bleu_4"], "fmr": paper["fmr"], "ifmr": ifmr}


def _variant(
    baseline: list[Prediction],
    explained: list[Prediction],
    baseline_scores: dict[str, float],
    reassigned: float,
    dataset: PreparedDataset,
    training: TrainingView,
    matcher: FeatureMatcher,
) -> dict[str, Any]:
    scores = _measure(explained, dataset, training, matcher)
    changed = [
        k for k, (a, b) in enumerate(zip(baseline, explained, strict=True)) if a.generated != b.generated
    ]
    return {
        "reassigned": reassigned,
        "changed": len(changed) / len(baseline),
        "unique_sentences": explainability.unique_sentence_count([normalize(p.generated) for p in explained]),
        "scores": scores,
        "delta": {key: scores[key] - baseline_scores[key] for key in MEASURED},
        "samples": [
            {
                "user": baseline[k].user,
                "item": baseline[k].item,
                "reference": baseline[k].reference,
                "as_trained": baseline[k].generated,
                "permuted": explained[k].generated,
            }
            for k in changed[:SAMPLES]
        ],
    }
