"""hf-causal runs a model's own code only with `pepler train --trust-remote-code`; tokenizers are data.

The model directory here is a tiny GPT-2 whose config.json names code shipped beside it (``auto_map``, model
type ``pepler-probe``); importing that code writes a marker file, so a test can tell whether it ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.errors import PeplerError
from pepler_cli.plugins import get_backbone

runner = CliRunner()
TRAIN = ["--strategy", "prompt-only", "--epochs", "1", "--batch-size", "32", "--device", "cpu"]

CONFIGURATION = """
import pathlib

pathlib.Path({marker!r}).write_text("the model's own code ran")

from transformers import GPT2Config


class ProbeConfig(GPT2Config):
    model_type = "pepler-probe"
"""
MODELING = """
from transformers import GPT2LMHeadModel

from .configuration_probe import ProbeConfig


class ProbeModel(GPT2LMHeadModel):
    config_class = ProbeConfig
"""
TOKENIZATION = """
import pathlib

pathlib.Path({marker!r}).write_text("the tokenizer's own code ran")

from transformers import GPT2TokenizerFast


class ProbeTokenizer(GPT2TokenizerFast):
    pass
"""


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The one error line of a failed command (progress bars and transformers' warnings may precede it)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    # A clean exit, not an exception escaping. (Not "no Traceback in the output": transformers' logging
    # handler may still hold an earlier CliRunner's closed stream and report that with a traceback.)
    assert isinstance(result.exception, SystemExit), result.exception
    return errors[0]


def gpt2_tokenizer_files(directory: Path) -> None:
    from pepler_gpt2 import bundled_tokenizer_dir
    from transformers import GPT2TokenizerFast

    GPT2TokenizerFast.from_pretrained(str(bundled_tokenizer_dir())).save_pretrained(str(directory))


@pytest.fixture
def custom_model(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A local model directory that needs its own code, and the marker that code writes when imported."""
    from transformers import GPT2Config, GPT2LMHeadModel, dynamic_module_utils

    # Where transformers copies trusted code before importing it: inside this test, not the home directory.
    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    marker = tmp_path / "model-code-ran"
    directory = tmp_path / "probe-model"
    config = GPT2Config(
        vocab_size=50257,
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    gpt2_tokenizer_files(directory)
    (directory / "configuration_probe.py").write_text(CONFIGURATION.format(marker=str(marker)))
    (directory / "modeling_probe.py").write_text(MODELING)
    settings = json.loads((directory / "config.json").read_text())
    settings.update(
        model_type="pepler-probe",
        architectures=["ProbeModel"],
        auto_map={
            "AutoConfig": "configuration_probe.ProbeConfig",
            "AutoModelForCausalLM": "modeling_probe.ProbeModel",
        },
    )
    (directory / "config.json").write_text(json.dumps(settings))
    return directory, marker


def test_a_model_with_its_own_code_is_refused_without_the_flag(custom_model, nete_tiny_data, tmp_path):
    directory, marker = custom_model
    run = tmp_path / "run"
    result = invoke(
        "train", "--data", nete_tiny_data, "--out", run, "--backbone", "hf-causal", "--backbone-path", directory,
        *TRAIN,
    )  # fmt: skip
    assert result.exit_code == 1
    line = one_line_error(result)
    assert f"{directory / 'config.json'}: field 'auto_map' names code shipped with the model" in line
    assert "configuration_probe.ProbeConfig" in line and "pepler train --trust-remote-code" in line
    assert not marker.exists()
    assert not run.exists()


def test_transformers_refusal_of_a_hub_model_is_one_line_too(custom_model, monkeypatch):
    """A hub id cannot be looked at before loading: transformers refuses, and pepler says so in one line."""
    import pepler_hf

    directory, marker = custom_model
    monkeypatch.setattr(pepler_hf, "refuse_custom_code", lambda source: None)  # as for a hub id
    with pytest.raises(PeplerError) as error:
        get_backbone("hf-causal").load_model(str(directory))
    assert error.value.message == (
        f"cannot load {str(directory)!r}: it ships code of its own that must run to load it; pepler runs a "
        "model's own code only with `pepler train --trust-remote-code`"
    )
    assert not marker.exists()


def test_with_the_flag_the_code_runs_and_the_run_loads_the_same_way(custom_model, nete_tiny_data, tmp_path):
    directory, marker = custom_model
    run = tmp_path / "run"
    result = invoke(
        "train", "--data", nete_tiny_data, "--out", run, "--backbone", "hf-causal", "--backbone-path", directory,
        "--trust-remote-code", *TRAIN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert marker.exists()
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    assert manifest["backbone"]["trust_remote_code"] is True
    marker.unlink()
    refused = invoke("generate", run, "--out", tmp_path / "p.jsonl", "--limit", "2", "--device", "cpu")
    assert refused.exit_code == 1 and "--trust-remote-code" in refused.output
    assert not marker.exists()  # refused before the backbone's code could run
    generated = invoke(
        "generate",
        run,
        "--out",
        tmp_path / "p.jsonl",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--trust-remote-code",
    )
    assert generated.exit_code == 0, generated.output
    assert (tmp_path / "p.jsonl").read_text().count("\n") == 2


@pytest.mark.parametrize("backbone", ["hf-causal", "smollm2-135m"])
def test_tokenizer_files_that_name_code_are_read_as_data_or_refused(backbone, tmp_path):
    """A run's tokenizer/ is loaded through load_tokenizer(path): code named by its files never runs."""
    marker = tmp_path / "tokenizer-code-ran"
    directory = tmp_path / "tokenizer"
    gpt2_tokenizer_files(directory)
    (directory / "tokenization_probe.py").write_text(TOKENIZATION.format(marker=str(marker)))
    settings = json.loads((directory / "tokenizer_config.json").read_text())
    settings.update(
        tokenizer_class="ProbeTokenizer",
        auto_map={"AutoTokenizer": [None, "tokenization_probe.ProbeTokenizer"]},
    )
    (directory / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(PeplerError) as error:
        get_backbone(backbone).load_tokenizer(str(directory))
    assert error.value.message == (
        f"cannot load {str(directory)!r}: its tokenizer needs code of its own, and pepler reads tokenizers as "
        "data only (never running their code, even with --trust-remote-code)"
    )
    assert not marker.exists()


def test_a_run_tokenizer_without_code_still_loads(tmp_path):
    directory = tmp_path / "tokenizer"
    gpt2_tokenizer_files(directory)
    tokenizer = get_backbone("hf-causal").load_tokenizer(str(directory))
    assert tokenizer(["the room"])["input_ids"] == [[1169, 2119]]


def test_the_gpt2_backbone_refuses_a_directory_with_code(custom_model):
    directory, marker = custom_model
    with pytest.raises(PeplerError, match="field 'auto_map' names code shipped with the model"):
        get_backbone("gpt2").load_model(str(directory))
    assert not marker.exists()
