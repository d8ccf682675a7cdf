"""LoRA strategies, training from scratch, bf16 on CPU, and `pepler export` (gpt2-tiny, the nete-tiny fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.generation.greedy import greedy_decode
from pepler_cli.modeling.batch import PromptInputs
from pepler_cli.modeling.special_tokens import special_tokens
from pepler_cli.plugins import get_backbone
from pepler_cli.run_model import load_run
from pepler_cli.runs import read_manifest
from pepler_cli.training.examples import encode_examples
from pepler_cli.training.loop import LoopOptions, SilentReporter, evaluate
from pepler_cli.training.train import train

runner = CliRunner()


@pytest.fixture(scope="module")
def data(nete_tiny_data: Path) -> Path:
    return nete_tiny_data


def config(data: Path, out: Path, **options) -> TrainConfig:
    settings = {"data": data, "out": out, "backbone": "gpt2-tiny", "epochs": 2, "batch_size": 16}
    return TrainConfig(**{**settings, "strategy": "sequential-lora", **options})


@pytest.fixture(scope="module")
def lora_run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora-run") / "run"
    train(config(data, out, rating_head="mlp", lora_rank=4), "test", SilentReporter())
    return out


def validation_loss(run: Path, data: Path) -> float:
    """The validation loss of a run's model as loaded from disk, as the training loop measures it."""
    loaded = load_run(run, torch.device("cpu"))
    dataset = load_prepared(data)
    special = special_tokens(loaded.tokenizer)
    numbers = dataset.splits[1][1]
    valid = encode_examples(dataset.records, numbers, loaded.tokenizer, loaded.entities, "records")
    options = LoopOptions(1e-3, 16, 1, 1, 0.01, 0, torch.device("cpu"), False, special.pad)
    return evaluate(loaded.model, valid, options)["loss"]


def test_a_lora_run_stores_only_adapters_and_prompt(lora_run):
    files = {path.name for path in lora_run.iterdir()}
    assert {"adapters.safetensors", "prompt.safetensors", "manifest.yaml"} <= files
    assert "backbone.safetensors" not in files  # the frozen LM is referenced by name, not copied
    manifest = read_manifest(lora_run)
    assert manifest["lora"] == {
        "rank": 4,
        "alpha": 16.0,
        "dropout": 0.05,
        "targets": ["c_attn", "c_proj", "c_fc"],
    }
    assert [stage["trains"] for stage in manifest["stages"]] == [
        ["prompt", "rating_head"],
        ["prompt", "rating_head", "lora"],
    ]
    adapters = load_file(str(lora_run / "adapters.safetensors"))
    assert adapters and all(".lora_A." in name or ".lora_B." in name for name in adapters)
    # LoRA's B matrices start at zero: training moved them.
    assert any(tensor.abs().sum() > 0 for name, tensor in adapters.items() if ".lora_B." in name)


def test_a_loaded_lora_run_reproduces_its_best_validation_loss(lora_run, data):
    best = read_manifest(lora_run)["stages"][-1]["best_valid_loss"]
    assert validation_loss(lora_run, data) == pytest.approx(best, abs=2e-6)


def test_the_frozen_lm_is_untouched_by_lora_training(lora_run):
    loaded = load_run(lora_run, torch.device("cpu"))
    reference = get_backbone("gpt2-tiny").load_model()
    merged = {name.replace(".base_layer", ""): p for name, p in loaded.model.lm.named_parameters()}
    for name, parameter in reference.named_parameters():
        assert torch.equal(merged[name], parameter), name


def test_export_merges_lora_into_a_standard_model_that_decodes_the_same(lora_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pepler_cli.modeling.continuous import ContinuousPromptModel

    out = tmp_path / "exported"
    result = runner.invoke(app, ["export", str(lora_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {"config.json", "model.safetensors", "pepler_prompt.safetensors", "pepler_export.yaml"} <= {
        path.name for path in out.iterdir()
    }
    loaded = load_run(lora_run, torch.device("cpu"))
    lm = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any(".lora_" in name for name, _ in lm.named_parameters())
    prompt = load_file(str(out / "pepler_prompt.safetensors"))
    exported = ContinuousPromptModel(lm, *[len(prompt[f"prompt.{kind}"]) for kind in ("user", "item")])
    exported.load_prompt_state({k: v for k, v in prompt.items() if k.startswith("prompt.")})
    inputs = PromptInputs(torch.arange(8), torch.arange(8) % 6)
    eos = AutoTokenizer.from_pretrained(out).eos_token_id
    assert torch.equal(
        greedy_decode(exported.eval(), inputs, eos, eos), greedy_decode(loaded.model, inputs, eos, eos)
    )


def test_lora_options_need_a_lora_strategy():
    result = runner.invoke(app, ["train", "--data", "d", "--out", "r", "--lora-rank", "4"])
    assert result.exit_code == 2 and "--lora-rank needs --strategy lora" in result.output


def test_unknown_lora_target_is_one_line(data, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--backbone", "gpt2-tiny", "--strategy", "lora"]
    result = runner.invoke(app, [*args, "--lora-targets", "q_proj", "--epochs", "1"])
    assert result.exit_code == 1 and "no module named 'q_proj'" in result.output
    assert not out.exists()


def test_lora_training_resumes_to_the_same_weights(data, lora_run, tmp_path):
    class StopAt(SilentReporter):
        def epoch_started(self, stage, epoch, batches):
            if (stage.name, epoch) == ("prompt+lora", 2):
                raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config(data, out, rating_head="mlp", lora_rank=4), "test", StopAt())
    train(config(data, out, rating_head="mlp", lora_rank=4, resume=True), "test", SilentReporter())
    for name in ("adapters.safetensors", "prompt.safetensors"):
        resumed, whole = load_file(str(out / name)), load_file(str(lora_run / name))
        assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole), name


def test_from_scratch_stores_its_own_backbone_and_is_reproducible(data, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        train(
            config(data, out, strategy="prompt-only", epochs=1, from_scratch=True), "test", SilentReporter()
        )
    first, second = (load_file(str(out / "backbone.safetensors")) for out in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)  # same seed, same random start
    pretrained = get_backbone("gpt2-tiny").load_model().state_dict()
    assert not torch.equal(
        first["transformer.h.0.attn.c_attn.weight"], pretrained["transformer.h.0.attn.c_attn.weight"]
    )
    manifest = read_manifest(runs[0])
    assert manifest["backbone"]["from_scratch"] is True and manifest["backbone_weights"] == "tuned"
    assert validation_loss(runs[0], data) == pytest.approx(manifest["stages"][0]["best_valid_loss"], abs=2e-6)


def test_bf16_autocast_trains_on_cpu_and_is_recorded(data, tmp_path):
    out = tmp_path / "run"
    manifest = train(
        config(data, out, strategy="joint", epochs=1, precision="bf16"), "test", SilentReporter()
    )
    assert manifest["device"] == {"type": "cpu", "bf16": True, "precision": "bf16"}
    assert torch.isfinite(torch.tensor(manifest["stages"][0]["best_valid_loss"]))


def test_a_frozen_backbone_with_other_weights_is_refused(lora_run, tmp_path):
    import shutil

    import yaml

    copy = tmp_path / "copy"
    shutil.copytree(lora_run, copy)
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    manifest["backbone"]["weights"]["seed"] = 1
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = runner.invoke(app, ["generate", str(copy), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 1 and "field 'backbone.weights.seed'" in result.output
