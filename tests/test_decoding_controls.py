"""Decoding that does not repeat itself: --no-repeat-ngram, --repetition-penalty, and diverse beam search
(--beam-groups, --diversity-penalty), each token for token what transformers' generate() writes with the same
options, given the prompt's embeddings and <bos>'s as inputs_embeds (so its processors, like pepler's, see the
generated tokens only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.config import GenerateConfig
from pepler_cli.generation.beam import beam_search
from pepler_cli.generation.decode import DecodeOptions, decode_batch
from pepler_cli.generation.greedy import cut_at_eos
from pepler_cli.generation.logits_processing import (
    RepetitionControls,
    ban_repeated_ngrams,
    penalise_repetitions,
)
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.modeling.continuous import ContinuousPromptModel

# transformers says, rightly, that its controls see only the generated tokens given inputs_embeds: what we compare.
pytestmark = pytest.mark.filterwarnings("ignore:Passing `.*` with `inputs_embeds`:UserWarning")

EOS = 50256
MAX_TOKENS = 10
REPO = Path(__file__).resolve().parents[1]
# transformers 4.56.2, the last with group beam search in the library (scripts/setup.sh installs it here).
REFERENCE = REPO / ".venv" / "reference-transformers4"
# Each control alone and both together: pepler's names, and generate()'s.
CONTROLS = [
    {"no_repeat_ngram": 2},
    {"repetition_penalty": 1.5},
    {"no_repeat_ngram": 1, "repetition_penalty": 1.3},
]
HF_NAMES = {"no_repeat_ngram": "no_repeat_ngram_size", "repetition_penalty": "repetition_penalty"}
# A bias on <eos> that ends some explanations before MAX_TOKENS and not others, by method.
EOS_BIAS = {"greedy": 0.15, "beam": 0.05}


def _model(tiny_lm, eos_bias: float) -> ContinuousPromptModel:
    torch.manual_seed(7)
    model = ContinuousPromptModel(tiny_lm, n_users=30, n_items=20)
    with torch.no_grad():
        # Large prompt vectors make the random model's outputs depend strongly on the user and item.
        model.user_embeddings.weight.normal_(0, 3.0)
        model.item_embeddings.weight.normal_(0, 3.0)
    # An untied output layer with a bias on <eos> only: the random model then ends some explanations.
    lm = model.lm
    words = lm.get_input_embeddings().weight
    head = nn.Linear(words.shape[1], words.shape[0], bias=True)
    with torch.no_grad():
        head.weight.copy_(words)
        head.bias.zero_()
        head.bias[EOS] = eos_bias
    lm.set_output_embeddings(head)
    return model.eval()


def _inputs(n: int = 8) -> PromptInputs:
    return PromptInputs(torch.arange(n) % 30, (torch.arange(n) * 7) % 20)


def _inputs_embeds(model: ContinuousPromptModel, inputs: PromptInputs) -> torch.Tensor:
    """What pepler feeds the LM before the first generated token: the prefix, then <bos>."""
    prefix, mask = model.prefix(inputs)
    assert mask is None  # nothing padded: generate() needs no position ids of ours
    bos = model.lm.get_input_embeddings()(torch.full((prefix.shape[0], 1), EOS))
    return torch.cat([prefix, bos.to(prefix.dtype)], dim=1)


def _cut(rows: list[list[int]], eos: int = EOS) -> list[list[int]]:
    return [cut_at_eos(row, eos) for row in rows]


def _pepler(model, inputs, eos: int = EOS, **options) -> list[list[int]]:
    chosen = DecodeOptions(max_tokens=MAX_TOKENS, **options)
    return _cut(decode_batch(model, inputs, EOS, eos, chosen).tolist(), eos)


def _generate(model, inputs, eos: int = EOS, **options) -> list[list[int]]:
    """transformers' generate() (the installed 5.x), greedy or beam search with pepler's stopping rule;
    ``eos`` ends an explanation (<bos> stays GPT-2's <|endoftext|>)."""
    embeds = _inputs_embeds(model, inputs)
    with torch.no_grad():
        out = model.lm.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
            max_new_tokens=MAX_TOKENS,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos,
            bos_token_id=EOS,
            early_stopping="never",  # beam search: stop only when nothing can beat the best, as pepler does
            **options,
        )
    return _cut(out.tolist(), eos)


def _hf_controls(controls: dict) -> dict:
    return {HF_NAMES[name]: value for name, value in controls.items()}


def _some_end_early(rows: list[list[int]]) -> bool:
    lengths = {len(row) for row in rows}
    return min(lengths) < MAX_TOKENS and MAX_TOKENS in lengths


def _most_common_midway(rows: list[list[int]]) -> int:
    midway = [token for row in rows for token in row[1 : MAX_TOKENS // 2]]
    return max(midway, key=midway.count)


def _ends_midway(rows: list[list[int]]) -> bool:
    return any(0 < len(row) < MAX_TOKENS for row in rows)


# --- the processors alone ---------------------------------------------------------------------------------


def test_processors_equal_transformers_processors():
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
    )

    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 50, generator=generator)
    scores[:, :10] = -scores[:, :10].abs()  # some negative, some positive scores among the seen tokens
    for steps in (0, 1, 2, 7):
        generated = torch.randint(0, 12, (6, steps), generator=generator)  # small range: n-grams do repeat
        for penalty in (0.7, 1.5):
            expected = RepetitionPenaltyLogitsProcessor(penalty)(generated, scores.clone())
            assert torch.equal(penalise_repetitions(generated, scores, penalty), expected)
        for size in (1, 2, 3):
            expected = NoRepeatNGramLogitsProcessor(size)(generated, scores.clone())
            assert torch.equal(ban_repeated_ngrams(generated, scores, size), expected)


def test_controls_are_checked_and_off_by_default():
    assert not RepetitionControls().active
    scores = torch.randn(2, 5)
    assert RepetitionControls()(torch.tensor([[1, 1], [2, 3]]), scores) is scores
    for bad in ({"no_repeat_ngram": -1}, {"repetition_penalty": 0.0}, {"repetition_penalty": -1.0}):
        with pytest.raises(ValueError):
            RepetitionControls(**bad)


# --- greedy, beam search and sampling against generate() --------------------------------------------------


@pytest.mark.parametrize("controls", CONTROLS, ids=lambda c: "+".join(c))
def test_greedy_with_controls_equals_generate(tiny_lm, controls):
    model = _model(tiny_lm, EOS_BIAS["greedy"])
    inputs = _inputs()
    ours = _pepler(model, inputs, decoding="greedy", **controls)
    assert ours == _generate(model, inputs, num_beams=1, **_hf_controls(controls))
    assert ours != _pepler(model, inputs, decoding="greedy"), "the control should change what is written"
    assert _some_end_early(ours)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("controls", CONTROLS, ids=lambda c: "+".join(c))
def test_beam_search_with_controls_equals_generate(tiny_lm, controls, length_penalty):
    """generate()'s beam search applies the controls to log-softmaxed scores, as pepler's does."""
    model = _model(tiny_lm, EOS_BIAS["beam"])
    inputs = _inputs()
    options = {"decoding": "beam", "beams": 3, "length_penalty": length_penalty}
    hf_options = {"num_beams": 3, "length_penalty": length_penalty, **_hf_controls(controls)}
    ours = _pepler(model, inputs, **options, **controls)
    assert ours == _generate(model, inputs, **hf_options)
    assert ours != _pepler(model, inputs, **options), "the control should change what is written"
    # Declared <eos>, the token the search writes mid-way most often ends hypotheses at different steps.
    stop = _most_common_midway(ours)
    ours = _pepler(model, inputs, eos=stop, **options, **controls)
    assert ours == _generate(model, inputs, eos=stop, **hf_options)
    # Normalised by length, this random model's hypotheses that end early never win.
    assert _ends_midway(ours) or length_penalty > 0


def test_beam_search_without_controls_equals_generate(tiny_lm):
    model = _model(tiny_lm, EOS_BIAS["beam"])
    inputs = _inputs()
    for length_penalty in (0.0, 1.0):
        ours = _pepler(model, inputs, decoding="beam", beams=4, length_penalty=length_penalty)
        assert ours == _generate(model, inputs, num_beams=4, length_penalty=length_penalty)


@pytest.mark.parametrize("controls", CONTROLS, ids=lambda c: "+".join(c))
def test_sampling_applies_the_controls_before_choosing(tiny_lm, controls):
    """Top-1 sampling is greedy decoding whatever the temperature: with the controls too, so it equals
    generate()'s greedy decoding with them (pepler's random draws are its own, so hotter sampling cannot be
    compared token for token)."""
    model = _model(tiny_lm, EOS_BIAS["greedy"])
    inputs = _inputs()
    expected = _generate(model, inputs, num_beams=1, **_hf_controls(controls))
    for temperature in (0.5, 2.0):
        options = {"decoding": "top-k", "top_k": 1, "temperature": temperature, "seed": 3}
        assert _pepler(model, inputs, **options, **controls) == expected


@pytest.mark.parametrize("method", ["greedy", "beam", "top-k", "top-p"])
def test_no_explanation_repeats_a_banned_ngram(tiny_lm, method):
    model = _model(tiny_lm, 0.0)
    inputs = _inputs()
    options = {"decoding": method, "beams": 3, "temperature": 3.0, "top_p": 0.99, "seed": 5}
    plain = _pepler(model, inputs, **options)
    for size in (1, 2):
        rows = _pepler(model, inputs, no_repeat_ngram=size, **options)
        for row in rows:
            ngrams = [tuple(row[i : i + size]) for i in range(len(row) - size + 1)]
            assert len(ngrams) == len(set(ngrams))
    if method in ("greedy", "beam"):  # the random model loops on a token: the ban is not vacuous
        assert any(len(set(row)) < len(row) for row in plain)


def test_controls_at_their_defaults_change_nothing(tiny_lm):
    model = _model(tiny_lm, EOS_BIAS["beam"])
    inputs = _inputs()
    for method in ("greedy", "beam", "top-k", "top-p"):
        plain = DecodeOptions(decoding=method, max_tokens=MAX_TOKENS, beams=3, seed=1)
        explicit = DecodeOptions(
            decoding=method,
            max_tokens=MAX_TOKENS,
            beams=3,
            seed=1,
            no_repeat_ngram=0,
            repetition_penalty=1.0,
            beam_groups=1,
            diversity_penalty=0.0,
        )
        assert torch.equal(
            decode_batch(model, inputs, EOS, EOS, plain), decode_batch(model, inputs, EOS, EOS, explicit)
        )


# --- diverse beam search ----------------------------------------------------------------------------------


def test_groups_without_a_penalty_are_plain_beam_search_of_their_size(tiny_lm):
    """With no diversity penalty the groups are the same search of beams/groups beams."""
    model = _model(tiny_lm, EOS_BIAS["beam"])
    inputs = _inputs()
    for length_penalty in (0.0, 1.0):
        plain = beam_search(model, inputs, EOS, EOS, MAX_TOKENS, beams=2, length_penalty=length_penalty)
        grouped = beam_search(
            model, inputs, EOS, EOS, MAX_TOKENS, beams=6, groups=3, length_penalty=length_penalty
        )
        assert _cut(grouped.tolist()) == _cut(plain.tolist())


def test_beam_groups_and_penalties_are_checked(tiny_lm):
    model = _model(tiny_lm, 0.0)
    inputs = _inputs(2)
    bad = (
        {"beams": 4, "groups": 3},
        {"beams": 4, "groups": 0},
        {"beams": 4, "groups": 2, "diversity_penalty": -1},
    )
    for options in bad:
        with pytest.raises(ValueError):
            beam_search(model, inputs, EOS, EOS, 3, **options)
    with pytest.raises(ValueError, match="4 beams cannot be split into 3 groups"):
        beam_search(model, inputs, EOS, EOS, 3, beams=4, groups=3)


def test_generate_options_are_checked():
    config = GenerateConfig(
        run="r",
        out="o",
        decoding="beam",
        beams=6,
        beam_groups=3,
        diversity_penalty=0.5,
        no_repeat_ngram=3,
        repetition_penalty=1.2,
    )
    options = DecodeOptions.from_config(config)
    assert (options.beam_groups, options.diversity_penalty) == (3, 0.5)
    assert options.controls == RepetitionControls(3, 1.2)
    runner = CliRunner()
    cases = [
        (
            ["--decoding", "beam", "--beams", "4", "--beam-groups", "3"],
            "cannot be split into --beam-groups 3",
        ),
        (["--beam-groups", "2", "--beams", "4"], "options of --decoding beam"),
        (["--decoding", "beam", "--diversity-penalty", "0.5"], "give --beam-groups 2 or more"),
        (["--repetition-penalty", "0"], "repetition_penalty"),
        (["--no-repeat-ngram", "-1"], "no_repeat_ngram"),
    ]
    for flags, message in cases:
        result = runner.invoke(app, ["generate", "nowhere", "--out", "o.jsonl", *flags])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


# Diverse beam search cases: pepler's options, and generate()'s.
DIVERSE = [
    {"beams": 6, "beam_groups": 3, "diversity_penalty": 1.0},
    {"beams": 4, "beam_groups": 2, "diversity_penalty": 0.3, "length_penalty": 1.0},
    {"beams": 6, "beam_groups": 3, "diversity_penalty": 2.0, "no_repeat_ngram": 2, "repetition_penalty": 1.3},
    {"beams": 4, "beam_groups": 4, "diversity_penalty": 5.0},
]


def _hf_diverse(options: dict) -> dict:
    names = {"beams": "num_beams", "beam_groups": "num_beam_groups", **HF_NAMES}
    case = {names.get(name, name): value for name, value in options.items()}
    return {"length_penalty": 0.0, **case}


@pytest.mark.skipif(
    not (REFERENCE / "transformers").is_dir(),
    reason=f"transformers 4.56.2 is not in {REFERENCE} (scripts/setup.sh installs it): transformers 5 has no "
    "group beam search in the library",
)
def test_diverse_beam_search_equals_transformers_4(tiny_lm, tmp_path):
    """Group beam search left transformers in 5.0, so the reference is 4.56.2's generate(), run in a
    subprocess on the same weights and inputs_embeds."""
    from safetensors.torch import save_file

    model = _model(tiny_lm, EOS_BIAS["beam"])
    inputs = _inputs()
    # Each case with <eos>, and with a token the search writes mid-way declared <eos>, so that groups finish
    # at different steps (a finished group's beams then count as <eos> in later groups' penalty).
    cases = []
    for options in DIVERSE:
        stop = _most_common_midway(_pepler(model, inputs, decoding="beam", **options))
        cases += [(options, EOS), (options, stop)]
    tensors = {
        f"lm.{name}": value.detach().clone().contiguous() for name, value in model.lm.state_dict().items()
    }
    tensors["inputs_embeds"] = _inputs_embeds(model, inputs).detach().contiguous()
    save_file(tensors, str(tmp_path / "tensors.safetensors"))
    config = model.lm.config
    fields = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
    spec = {
        "config": {name: getattr(config, name) for name in fields},
        "eos": EOS,
        "max_tokens": MAX_TOKENS,
        "cases": [
            {**_hf_diverse(options), "eos_token_id": eos, "pad_token_id": eos} for options, eos in cases
        ],
    }
    (tmp_path / "cases.json").write_text(json.dumps(spec), encoding="utf-8")
    environment = {
        **os.environ,
        "PYTHONPATH": str(REFERENCE),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    script = Path(__file__).with_name("reference_group_beam.py")
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tensors.safetensors"), str(tmp_path / "cases.json")],
        capture_output=True,
        check=False,
        text=True,
        env=environment,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    reference = json.loads(completed.stdout.strip().splitlines()[-1])
    assert reference["version"] == "4.56.2"
    midway = False
    for (options, eos), expected in zip(cases, reference["outputs"]):
        ours = _pepler(model, inputs, eos=eos, decoding="beam", **options)
        assert ours == _cut(expected, eos), (options, eos)
        plain = _pepler(model, inputs, eos=eos, decoding="beam", **{**options, "diversity_penalty": 0.0})
        assert ours != plain, f"the diversity penalty should change what is written: {options}"
        midway |= _ends_midway(ours)
    assert midway
