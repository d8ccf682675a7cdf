"""Benchmark 5, CUDA: tokens/s and model-FLOPs utilisation of pepler's bf16 training step on a GPU.

    python benchmarks/bench_cuda.py [--quick]

Without CUDA it records ``"skipped": "no CUDA"`` and exits 0. With CUDA: a randomly initialised model of
GPT-2 small's shape (12 layers, width 768, 124M parameters, seeded) behind PEPLER's continuous prompt,
split 1's training part of the bundled Amazon dataset, batches of 128, fused AdamW, bf16 autocast, and
``pepler_cli.training.loop.train_one_epoch`` (the step ``pepler train --device cuda`` runs): one warm-up
epoch, then the median of three timed epochs (synchronised).

Model FLOPs of an epoch, summed over its examples, an example being L = 2 prompt vectors + <bos> + words +
<eos> positions of which T = L - 3 carry a label (the words and <eos>):

    6 · N_blocks · L  +  12 · n_layer · d · L²  +  6 · V · d · T

(forward and backward: 6 FLOPs per parameter per position through the transformer blocks; the attention
products QKᵀ and AV at 12 · n_layer · d · L per position, PaLM's convention, counting the full L × L square;
the tied LM head, V × d, only where a label exists, which is all the work the loss needs). Padding and the
paper's logits at unlabeled positions are not counted: they are not useful work. MFU = achieved FLOPs per
second / the GPU's dense bf16 peak from the table below; for a GPU not in the table only the achieved
FLOPs are reported.
"""

from __future__ import annotations

import sys
from typing import Any

import benchlib as bl

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, FLOPs/s. Checked in this order,
# so that e.g. "A100" is matched before "A10" and "L40S" before "L40" before "L4".
PEAK_BF16 = (
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H20", 148e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10", 125e12),
)


def peak_flops(device_name: str) -> tuple[str, float] | None:
    for key, peak in PEAK_BF16:
        if key in device_name:
            return key, peak
    return None


def epoch_model_flops(
    lengths: list[int],
    n_layer: int,
    width: int,
    vocabulary: int,
    block_parameters: int,
    prompt_length: int = 2,
) -> float:
    """The formula of the module docstring; ``lengths`` are the examples' <bos> … <eos> token counts."""
    total = 0.0
    for tokens in lengths:
        positions = prompt_length + tokens
        targets = tokens - 1
        total += (
            6 * block_parameters * positions
            + 12 * n_layer * width * positions**2
            + 6 * vocabulary * width * targets
        )
    return total


def run(device_name: str, quick: bool, force_cpu: bool) -> dict[str, Any]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.modeling.continuous import ContinuousPromptModel
    from pepler_cli.modeling.entities import EntityIndex
    from pepler_cli.modeling.special_tokens import special_tokens
    from pepler_cli.plugins import get_backbone
    from pepler_cli.strategies import FULL_STAGE
    from pepler_cli.training.examples import encode_examples
    from pepler_cli.training.loop import (
        LoopOptions,
        make_optimizer,
        set_trainable,
        train_one_epoch,
    )

    device = torch.device("cpu" if force_cpu else "cuda")
    dataset = load_prepared(bl.prepared_amazon())
    tokenizer = get_backbone("gpt2-tiny").load_tokenizer()  # the real GPT-2 tokenizer
    entities = EntityIndex.from_records(dataset.records)
    numbers = list(dataset.splits[1][0])
    if quick:
        numbers = numbers[: 4 * 128]
    examples = encode_examples(dataset.records, numbers, tokenizer, entities, "train")
    torch.manual_seed(20230101)
    config = GPT2Config(n_layer=2, n_embd=128, n_head=4) if force_cpu else GPT2Config()
    model = ContinuousPromptModel(GPT2LMHeadModel(config), len(entities.users), len(entities.items)).to(
        device
    )
    trainable = set_trainable(model, FULL_STAGE)
    optimizer = make_optimizer(trainable, 1e-3)  # fused AdamW, as `pepler train` uses
    options = LoopOptions(
        learning_rate=1e-3,
        batch_size=128,
        max_epochs=1,
        patience=5,
        rating_weight=0.01,
        seed=1111,
        device=device,
        bf16=not force_cpu,
        pad_id=special_tokens(tokenizer).pad,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def epoch(number: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds, _ = bl.clock(
            lambda: train_one_epoch(model, FULL_STAGE, number, examples, optimizer, options)
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        return seconds

    epoch(1)  # warm-up: kernel selection, allocator
    timed = [epoch(n) for n in range(2, 2 + (1 if quick else 3))]
    seconds = bl.median(timed)
    lengths = [len(ids) for ids in examples.token_ids]
    lm = model.lm
    embedding_parameters = lm.transformer.wte.weight.numel() + lm.transformer.wpe.weight.numel()
    block_parameters = sum(p.numel() for p in lm.parameters()) - embedding_parameters
    flops = epoch_model_flops(lengths, config.n_layer, config.n_embd, config.vocab_size, block_parameters)
    achieved = flops / seconds
    peak = peak_flops(device_name)
    target_tokens = examples.target_tokens
    result: dict[str, Any] = {
        "model": f"GPT-2-small-shaped, random ({config.n_layer} layers, width {config.n_embd})",
        "lm_parameters": sum(p.numel() for p in lm.parameters()),
        "block_parameters": block_parameters,
        "examples": len(examples),
        "batch_size": 128,
        "bf16_autocast": options.bf16,
        "epoch_seconds": [round(s, 4) for s in timed],
        "target_tokens_per_epoch": target_tokens,
        "tokens_per_second": round(target_tokens / seconds),
        "positions_per_second": round(sum(n + 2 for n in lengths) / seconds),
        "model_flops_per_epoch": flops,
        "achieved_tflops": round(achieved / 1e12, 2),
        "flops_formula": "6*N_blocks*L + 12*n_layer*d*L^2 + 6*V*d*T per example (L positions, T labels)",
        "peak_bf16_tflops": None if peak is None else peak[1] / 1e12,
        "peak_matched": None if peak is None else peak[0],
        "mfu": None if peak is None else round(achieved / peak[1], 4),
    }
    if device.type == "cuda":
        result["peak_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return result


def main(argv: list[str] | None = None) -> int:
    p = bl.parser(__doc__)
    p.add_argument(
        "--force-cpu", action="store_true", help="exercise the code on CPU with a tiny model (testing)"
    )
    args = p.parse_args(argv)
    out = bl.results_dir(args)
    import torch

    machine = bl.machine_info()
    result: dict[str, Any] = {"benchmark": "cuda", "quick": args.quick, "machine": machine}
    if not torch.cuda.is_available() and not args.force_cpu:
        result["skipped"] = "no CUDA"
        result["cases"] = [
            bl.case(
                "CUDA bf16 training step",
                measure="skipped: no CUDA",
                unit="",
                pepler=None,
                paper=None,
                speedup=None,
                target=None,
                met=None,
                target_text="report tokens/s and MFU",
                chart=False,
                skipped="no CUDA",
            )
        ]
        print("cuda: skipped (no CUDA)", flush=True)
        bl.write_result(out, "cuda", result)
        return 0
    name = "cpu (forced)" if args.force_cpu else torch.cuda.get_device_name(0)
    measured = run(name, args.quick, args.force_cpu)
    result["device"] = name
    result.update(measured)
    mfu = measured["mfu"]
    result["cases"] = [
        bl.case(
            "CUDA bf16 training step",
            measure=f"{measured['model']}, bf16 autocast, batch 128, on {name}",
            unit="tokens/s",
            pepler=measured["tokens_per_second"],
            paper=None,
            speedup=None,
            target=None,
            target_text="report tokens/s and MFU",
            met=None,
            chart=False,
            mfu=mfu,
            achieved_tflops=measured["achieved_tflops"],
        )
    ]
    print(
        f"cuda: {measured['tokens_per_second']:,} tokens/s, {measured['achieved_tflops']} TFLOP/s, "
        f"MFU {'unknown GPU' if mfu is None else f'{mfu:.1%}'}",
        flush=True,
    )
    bl.write_result(out, "cuda", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
