"""Benchmark 3, training: tokens per second of a training epoch, pepler's step vs the paper's.

    python benchmarks/bench_training.py [--quick] [--stages full,prompt] [--steps N]

Data: split 1's training part of the bundled Amazon dataset (prepared on the fly), ``gpt2-tiny``, PEPLER's
continuous prompt, AdamW with learning rate 1e-3 and batches of 128 (the paper's settings). Both sides start
each repetition from the same initial weights, in this process, and see the same examples.

- pepler: ``pepler_cli.training.loop.train_one_epoch`` as ``pepler train`` runs it: batches padded to their own
  longest explanation, the LM head applied only where a label exists, cross-entropy in chunks with no
  (tokens × vocabulary) logit matrix kept for backward; for the full stage also with length-bucketed batches
  (``--bucket-by-length``), where this pepler has that option.
- the paper's step (``paper_loss`` below, from the authors' description): the whole training set padded once
  to its longest explanation, every batch sliced from that, ``lm(inputs_embeds=..., attention_mask=...,
  labels=...)`` computing logits at every position and Hugging Face's shifted cross-entropy with -100 on the
  prompt and the padding. The authors also put a label on <bos> (predicted from the item vector); pepler does
  not (the token is always given), so here <bos> is -100 too and both sides optimise the same loss.

Equality: on one batch, with dropout off, both losses must agree to 1e-5 (relative) and every gradient to
1e-4 of its largest entry; the benchmark fails otherwise. (The epochs' mean losses agree too: same batches.)

Tokens per second = the target tokens (explanation words and <eos>, the same count on both sides) over the
seconds of the training steps (batching, forward, backward, optimizer step; tokenization is outside, done
once before). The full stage is timed over whole epochs, the prompt-only stage over a fixed, seeded subset of
16 batches (see FULL_PLAN). Peak memory: each side runs its first steps in a fresh subprocess and reports its
peak resident set size (ru_maxrss; tracemalloc cannot see torch's CPU allocations) and its size after setup,
so the difference is what training added.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import sys
from dataclasses import dataclass
from typing import Any

import benchlib as bl
import torch

from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.modeling.batch import collate
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.modeling.special_tokens import special_tokens
from pepler_cli.plugins import get_backbone
from pepler_cli.strategies import FULL_STAGE, PROMPT_STAGE, Stage
from pepler_cli.training.examples import Examples, encode_examples
from pepler_cli.training.loop import (
    LoopOptions,
    make_optimizer,
    objective,
    set_trainable,
    train_one_epoch,
)

TARGET = 2.0  # the ratio pepler held before the DDP restructuring; it must still hold
BATCH = 128
LEARNING_RATE = 1e-3
SEED = 1111
STAGES = {"full": FULL_STAGE, "prompt": PROMPT_STAGE}
STAGE_LABEL = {
    "full": "prompt + LM (the second stage of sequential tuning)",
    "prompt": "prompt only, LM frozen",
}
# Per stage: batches timed (None = the whole epoch of 56 batches) and repetitions (pepler, paper). On two CPU
# cores an epoch takes about 1.2 minutes with pepler and 2.6 with the paper's step, so the full stage gets two
# whole epochs a side and the prompt-only stage two runs of a fixed 16-batch subset; pepler's length-bucketed
# variant is timed once. Quick runs time 4 batches once.
FULL_PLAN = {"full": (None, (2, 2)), "prompt": (16, (2, 2))}
QUICK_STEPS = 4
BUCKETED_REPS = 1
# pepler's optional length-bucketed batches (`pepler train --bucket-by-length`), timed too where present.
BUCKETING = "bucket_by_length" in {f.name for f in dataclasses.fields(LoopOptions)}
MEMORY_STEPS = 10


@dataclass
class Setup:
    model: ContinuousPromptModel
    initial: dict[str, torch.Tensor]
    examples: Examples
    pad: int
    padded_tokens: torch.Tensor  # (N, L) the training set padded once to its longest (the paper's way)
    padded_mask: torch.Tensor


def setup(steps: int | None) -> Setup:
    dataset = load_prepared(bl.prepared_amazon())
    backbone = get_backbone("gpt2-tiny")
    tokenizer = backbone.load_tokenizer()
    entities = EntityIndex.from_records(dataset.records)
    numbers = list(dataset.splits[1][0])
    examples = encode_examples(dataset.records, numbers, tokenizer, entities, "train")
    # The paper pads to the longest explanation of the whole training set, also when only a subset is timed.
    longest = max(len(ids) for ids in examples.token_ids)
    if steps is not None:  # a seeded subset of whole batches
        numbers = sorted(random.Random(SEED).sample(numbers, min(len(numbers), steps * BATCH)))
        examples = encode_examples(dataset.records, numbers, tokenizer, entities, "train")
    torch.manual_seed(SEED)
    model = ContinuousPromptModel(backbone.load_model(), len(entities.users), len(entities.items))
    pad = special_tokens(tokenizer).pad
    tokens = torch.full((len(examples), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), longest), dtype=torch.bool)
    for row, ids in enumerate(examples.token_ids):
        tokens[row, : len(ids)] = torch.as_tensor(ids)
        mask[row, : len(ids)] = True
    return Setup(model, copy.deepcopy(model.state_dict()), examples, pad, tokens, mask)


# ---- the paper's training step --------------------------------------------------------------------------


def paper_loss(
    model: ContinuousPromptModel,
    users: torch.Tensor,
    items: torch.Tensor,
    tokens: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Mean NLL of the explanation tokens with logits at every position (Hugging Face's causal-LM loss)."""
    prefix = model.prefix_embeddings(users, items)
    words = model.lm.get_input_embeddings()(tokens)
    inputs = torch.cat([prefix, words], dim=1)
    prompt_ones = torch.ones((tokens.shape[0], prefix.shape[1]), dtype=torch.long)
    attention = torch.cat([prompt_ones, mask.long()], dim=1)
    labels = torch.cat([torch.full_like(prompt_ones, -100), torch.where(mask, tokens, -100)], dim=1)
    labels[:, prefix.shape[1]] = -100  # <bos>: see the module docstring
    return model.lm(inputs_embeds=inputs, attention_mask=attention, labels=labels, use_cache=False).loss


def paper_epoch(s: Setup, optimizer: torch.optim.Optimizer, epoch: int = 1) -> float:
    s.model.train()
    generator = torch.Generator().manual_seed(SEED * 1000 + epoch)
    order = torch.randperm(len(s.examples), generator=generator)
    users = torch.as_tensor(s.examples.users)
    items = torch.as_tensor(s.examples.items)
    loss_sum = torch.zeros(())
    steps = 0
    for start in range(0, len(s.examples), BATCH):
        rows = order[start : start + BATCH]
        loss = paper_loss(s.model, users[rows], items[rows], s.padded_tokens[rows], s.padded_mask[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        steps += 1
    return float(loss_sum) / max(steps, 1)


def pepler_epoch(
    s: Setup, stage: Stage, optimizer: torch.optim.Optimizer, epoch: int = 1, bucketed: bool = False
) -> float:
    extra = {"bucket_by_length": True} if bucketed else {}
    options = LoopOptions(
        learning_rate=LEARNING_RATE,
        batch_size=BATCH,
        max_epochs=1,
        patience=5,
        rating_weight=0.01,
        seed=SEED,
        device=torch.device("cpu"),
        bf16=False,
        pad_id=s.pad,
        **extra,
    )
    return train_one_epoch(s.model, stage, epoch, s.examples, optimizer, options)


def fresh_optimizer(s: Setup, stage: Stage, side: str = "paper") -> torch.optim.Optimizer:
    """The weights reset to the shared start; pepler's optimizer is pepler's (fused AdamW), the paper's the
    plain ``torch.optim.AdamW`` of the authors' code. Both apply the same update rule."""
    s.model.load_state_dict(s.initial)
    trainable = set_trainable(s.model, stage)
    if side.startswith("pepler"):
        return make_optimizer(trainable, LEARNING_RATE)
    return torch.optim.AdamW(trainable, lr=LEARNING_RATE)


# ---- equality on one batch ------------------------------------------------------------------------------


def check_same_loss(s: Setup, stage: Stage) -> dict[str, float]:
    rows = torch.randperm(len(s.examples), generator=torch.Generator().manual_seed(3))[:BATCH].tolist()
    ex = s.examples
    batch = collate(
        [ex.users[r] for r in rows],
        [ex.items[r] for r in rows],
        [ex.token_ids[r] for r in rows],
        [ex.ratings[r] for r in rows],
        s.pad,
    )
    results = []
    for side in ("pepler", "paper"):
        fresh_optimizer(s, stage)
        s.model.eval()  # dropout off, so the two computations see the same network
        trainable = [p for p in s.model.parameters() if p.requires_grad]
        if side == "pepler":
            loss = objective(s.model.losses(batch), 0.01)
        else:
            index = torch.as_tensor(rows)
            loss = paper_loss(s.model, batch.users, batch.items, s.padded_tokens[index], s.padded_mask[index])
        grads = torch.autograd.grad(loss, trainable)
        results.append((float(loss.detach()), grads))
    (pepler_loss, pepler_grads), (paper_loss_value, paper_grads) = results
    loss_gap = abs(pepler_loss - paper_loss_value) / max(1.0, abs(paper_loss_value))
    grad_gap = max(
        float((a - b).abs().max() / b.abs().max().clamp(min=1e-12)) for a, b in zip(pepler_grads, paper_grads)
    )
    assert loss_gap <= 1e-5, f"losses differ: pepler {pepler_loss}, paper {paper_loss_value}"
    assert grad_gap <= 1e-4, f"gradients differ by {grad_gap:.2e} of their largest entry"
    return {
        "pepler_loss": pepler_loss,
        "paper_loss": paper_loss_value,
        "relative_loss_difference": loss_gap,
        "largest_relative_gradient_difference": grad_gap,
    }


# ---- peak memory, one side per subprocess ---------------------------------------------------------------


def memory_worker(side: str, stage_key: str, steps: int) -> None:
    s = setup(steps)
    stage = STAGES[stage_key]
    optimizer = fresh_optimizer(s, stage, side)
    after_setup = bl.peak_rss_mib_self()
    if side == "pepler":
        pepler_epoch(s, stage, optimizer)
    else:
        paper_epoch(s, optimizer)
    print(json.dumps({"rss_after_setup_mib": after_setup, "peak_rss_mib": bl.peak_rss_mib_self()}))


def measure_memory(side: str, stage_key: str, steps: int) -> dict[str, float]:
    # Through benchlib's small wrapper process: a child forked straight from this (large) process would
    # inherit its peak RSS, since Linux keeps ru_maxrss across exec.
    measured = bl.measure_command(
        [sys.executable, __file__, "--memory-worker", side, "--stages", stage_key, "--steps", str(steps)]
    )
    return json.loads(measured["stdout"].strip().splitlines()[-1])


# ---- the benchmark --------------------------------------------------------------------------------------


def run_stage(stage_key: str, steps: int | None, reps: tuple[int, int], quick: bool) -> list[dict[str, Any]]:
    stage = STAGES[stage_key]
    s = setup(steps)
    equality = check_same_loss(s, stage)
    tokens = s.examples.target_tokens
    # pepler's default batches, and (for the full stage, where pepler has the option) length-bucketed ones.
    sides = ["pepler", *(["pepler, length-bucketed"] if BUCKETING and stage_key == "full" else []), "paper"]
    runners = {
        "pepler": lambda optimizer: pepler_epoch(s, stage, optimizer),
        "pepler, length-bucketed": lambda optimizer: pepler_epoch(s, stage, optimizer, bucketed=True),
        "paper": lambda optimizer: paper_epoch(s, optimizer),
    }
    # Warm-up: first-call allocations and kernel choices, on a throwaway copy of one batch.
    warm = setup(1)
    pepler_epoch(warm, stage, fresh_optimizer(warm, stage, "pepler"))
    paper_epoch(warm, fresh_optimizer(warm, stage, "paper"))
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    losses: dict[str, list[float]] = {side: [] for side in sides}
    wanted = {"pepler": reps[0], "pepler, length-bucketed": min(reps[0], BUCKETED_REPS), "paper": reps[1]}
    for rep in range(max(reps)):
        for side in sides:
            if rep >= wanted[side]:
                continue
            optimizer = fresh_optimizer(s, stage, side)
            elapsed, loss = bl.clock(lambda run=runners[side], o=optimizer: run(o))
            seconds[side].append(elapsed)
            losses[side].append(loss)
            bl.say(
                f"  {stage_key} {side} rep {rep + 1}: {elapsed:.1f} s, {tokens / elapsed:,.0f} tokens/s, loss {loss:.4f}"
            )
    memory_steps = min(MEMORY_STEPS, steps) if steps else MEMORY_STEPS
    memory = {side: measure_memory(side, stage_key, memory_steps) for side in ("pepler", "paper")}
    paper_rate = tokens / bl.median(seconds["paper"])
    batches = (len(s.examples) + BATCH - 1) // BATCH
    cases = []
    for side in sides[:-1]:
        rate = tokens / bl.median(seconds[side])
        speedup = rate / paper_rate
        suffix = ", length-bucketed" if "bucketed" in side else ""
        cases.append(
            bl.case(
                f"training, {stage_key}{suffix}",
                measure=f"tokens/s of {'one epoch' if steps is None else f'{batches} batches'} ({len(s.examples):,} "
                f"examples, {tokens:,} target tokens), gpt2-tiny, stage {STAGE_LABEL[stage_key]}"
                + (", pepler with --bucket-by-length" if suffix else ""),
                unit="tokens/s",
                pepler=round(rate),
                paper=round(paper_rate),
                speedup=speedup,
                target=TARGET,
                target_text=f">= {TARGET:g}x",
                met=None if quick else speedup >= TARGET,
                examples=len(s.examples),
                batches=batches,
                batch_size=BATCH,
                target_tokens=tokens,
                dataset_longest_sequence=int(s.padded_tokens.shape[1]),
                mean_sequence=round(sum(len(ids) for ids in s.examples.token_ids) / len(s.examples), 2),
                pepler_seconds=[round(x, 2) for x in seconds[side]],
                paper_seconds=[round(x, 2) for x in seconds["paper"]],
                pepler_epoch_losses=[round(x, 5) for x in losses[side]],
                paper_epoch_losses=[round(x, 5) for x in losses["paper"]],
                same_batch=equality,
                memory_steps=memory_steps,
                pepler_memory=memory["pepler"],
                paper_memory=memory["paper"],
            )
        )
    return cases


def main(argv: list[str] | None = None) -> int:
    p = bl.parser(__doc__)
    p.add_argument("--stages", default="full,prompt", help="comma-separated: full, prompt")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="time N batches of a fixed subset instead of the "
        f"plan's (full stage: whole epoch; prompt stage: 16 batches; quick: {QUICK_STEPS})",
    )
    p.add_argument("--reps", default=None, help="repetitions as PEPLER,PAPER (default: per stage)")
    p.add_argument("--memory-worker", choices=("pepler", "paper"), help=argparse_hidden())
    args = p.parse_args(argv)
    stage_keys = [k.strip() for k in args.stages.split(",") if k.strip()]
    if args.memory_worker:
        memory_worker(args.memory_worker, stage_keys[0], args.steps or MEMORY_STEPS)
        return 0
    out = bl.results_dir(args)
    result: dict[str, Any] = {
        "benchmark": "training",
        "quick": args.quick,
        "machine": bl.machine_info(),
        "method": "gpt2-tiny, continuous prompt, AdamW lr 1e-3, batch 128, split 1 of the bundled Amazon data; "
        "same initial weights and examples per repetition, same process, medians; memory = peak RSS of a "
        f"fresh subprocess per side over its first {MEMORY_STEPS} batches",
        "cases": [],
    }
    for key in stage_keys:
        steps, reps = (QUICK_STEPS, (1, 1)) if args.quick else FULL_PLAN[key]
        if args.steps is not None:
            steps = args.steps
        if args.reps:
            reps = tuple(int(x) for x in args.reps.split(","))
        bl.say(f"training stage {key}: repetitions pepler {reps[0]}, paper {reps[1]}")
        for outcome in run_stage(key, steps, reps, args.quick):  # type: ignore[arg-type]
            result["cases"].append(outcome)
            print(
                f"{outcome['name']}: pepler {outcome['pepler']:,} tokens/s, paper {outcome['paper']:,} tokens/s, "
                f"{outcome['speedup']:.2f}x (target {TARGET:g}x); peak RSS pepler "
                f"{outcome['pepler_memory']['peak_rss_mib']:.0f} MiB, paper "
                f"{outcome['paper_memory']['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    bl.write_result(out, "training", result)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
