"""How to decode (the options), which method does it, and decoding a whole list of examples in batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch

from pepler_cli.distributed import SINGLE, World, shard
from pepler_cli.generation.beam import beam_search
from pepler_cli.generation.greedy import cut_at_eos, greedy_decode
from pepler_cli.generation.logits_processing import RepetitionControls
from pepler_cli.generation.sampling import sample_decode
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.paper import MAX_EXPLANATION_TOKENS
from pepler_cli.plugins import ExplanationModel

DECODING_METHODS = ("greedy", "beam", "top-k", "top-p")


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode; ``sampling.py`` documents sampling's seeding and ``beam.py`` beam search's scoring."""

    max_tokens: int = MAX_EXPLANATION_TOKENS
    batch_size: int = 256
    decoding: str = "greedy"  # greedy | beam | top-k | top-p
    beams: int = 4  # beam
    length_penalty: float = 0.0  # beam: rank by sum of log-probs / length**length_penalty; 0 = plain sums
    beam_groups: int = 1  # beam: diverse beam search in this many groups of beams / beam_groups; 1 = plain
    diversity_penalty: float = 0.0  # beam with groups: per earlier group's choice of the same token
    top_k: int = 50  # top-k
    top_p: float = 0.9  # top-p
    temperature: float = 1.0  # top-k and top-p
    seed: int = 1111  # top-k and top-p
    no_repeat_ngram: int = 0  # every method: no n-gram of this many tokens twice in an explanation; 0 = off
    repetition_penalty: float = 1.0  # every method: CTRL penalty on tokens already written; 1.0 = off

    @property
    def controls(self) -> RepetitionControls:
        """The anti-repetition controls (logits_processing.py) every method applies."""
        return RepetitionControls(self.no_repeat_ngram, self.repetition_penalty)

    @classmethod
    def from_config(cls, config: object, max_tokens: int = MAX_EXPLANATION_TOKENS) -> DecodeOptions:
        """The options of ``config`` (a ``GenerateConfig``) by name; ``max_tokens`` where it gives none (the
        run's explanation length, ``LoadedRun.max_tokens``)."""
        values = {f.name: getattr(config, f.name) for f in fields(cls)}
        if values["max_tokens"] is None:
            values["max_tokens"] = max_tokens
        return cls(**values)


def decode_batch(
    model: ExplanationModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    options: DecodeOptions,
    first_row: int = 0,
) -> torch.Tensor:
    """(B, ≤ max_tokens) ids by ``options.decoding``; ``first_row`` (the batch's first example's index among
    all decoded) picks the sampling methods' random numbers, so batching does not change their output."""
    method = options.decoding
    controls = options.controls
    if method == "greedy":
        return greedy_decode(model, inputs, bos, eos, options.max_tokens, controls)
    if method == "beam":
        return beam_search(
            model,
            inputs,
            bos,
            eos,
            options.max_tokens,
            beams=options.beams,
            length_penalty=options.length_penalty,
            groups=options.beam_groups,
            diversity_penalty=options.diversity_penalty,
            controls=controls,
        )
    if method in ("top-k", "top-p"):
        return sample_decode(
            model,
            inputs,
            bos,
            eos,
            options.max_tokens,
            temperature=options.temperature,
            top_k=options.top_k if method == "top-k" else None,
            top_p=options.top_p if method == "top-p" else None,
            seed=options.seed,
            first_row=first_row,
            controls=controls,
        )
    raise ValueError(f"unknown decoding {method!r}: expected one of {', '.join(DECODING_METHODS)}")


def decode_in_batches(
    model: ExplanationModel,
    inputs: PromptInputs,
    bos: int,
    eos: int,
    device: torch.device,
    options: DecodeOptions,
    world: World = SINGLE,
) -> Iterator[tuple[int, list[list[int]]]]:
    """Yield, batch by batch, the batch's first row and each example's generated ids already cut at <eos>.

    ``inputs`` holds every example on the host; each batch is moved to ``device`` on its own. Under torchrun
    each rank decodes every world-size-th batch: the same batches, seeded by their first row, as one process
    decodes, so the texts are the same whatever the number of ranks.
    """
    model.eval()
    total = inputs.users.shape[0]
    for start in shard(range(0, total, options.batch_size), world):
        rows = torch.arange(start, min(start + options.batch_size, total))
        batch = inputs.select(rows).to(device)
        generated = decode_batch(model, batch, bos, eos, options, first_row=start).cpu().tolist()
        yield start, [cut_at_eos(row, eos) for row in generated]
