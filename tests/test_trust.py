"""Nothing pepler loads can run code: YAML through the safe loader only, weights only as safetensors, a
backbone's own code only with `train --trust-remote-code` (recorded in the run, passed again on load).

The Hugging Face side (a model directory whose config.json has an `auto_map`, a run's tokenizer files) is
tested with the backbone that loads such models: plugins/pepler-hf/tests/test_trust_remote_code.py.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.errors import PeplerError
from pepler_cli.files import read_yaml_mapping
from pepler_cli.plugins import load_backbone_model, registry

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "src" / "pepler_cli", *sorted((REPO / "plugins").glob("*/src"))]
TRAIN = ["--strategy", "prompt-only", "--epochs", "1", "--batch-size", "32", "--device", "cpu"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The one error line of a failed command (progress bars may precede it on stderr)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def python_tag(marker: Path) -> str:
    """A YAML value that runs a shell command when read by an unsafe loader."""
    return f'!!python/object/apply:os.system ["touch {marker}"]'


# ------------------------------------------------------------------------------------------------ YAML


def test_yaml_with_a_python_tag_is_refused_as_bad_input(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "options.yaml"
    path.write_text(f"epochs: {python_tag(marker)}\n")
    with pytest.raises(PeplerError) as error:
        read_yaml_mapping(path, "config file")
    assert error.value.message.startswith(f"{path}: ")
    assert "\n" not in error.value.message
    assert not marker.exists()


def test_a_config_file_with_a_python_tag_is_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "train.yaml"
    config.write_text(f"data: d\nout: r\nseed: {python_tag(marker)}\n")
    result = invoke("train", "--config", config)
    assert result.exit_code == 2
    assert f"--config {config}: " in one_line_error(result)
    assert not marker.exists()


def test_a_dataset_manifest_with_a_python_tag_is_refused(nete_tiny_data, tmp_path):
    marker = tmp_path / "ran"
    data = tmp_path / "data"
    shutil.copytree(nete_tiny_data, data)
    with open(data / "manifest.yaml", "a", encoding="utf-8") as handle:
        handle.write(f"note: {python_tag(marker)}\n")
    result = invoke("train", "--data", data, "--out", tmp_path / "run", "--backbone", "gpt2-tiny", *TRAIN)
    assert result.exit_code == 1
    assert f"{data / 'manifest.yaml'}: " in one_line_error(result)
    assert not marker.exists()


def test_a_run_manifest_with_a_python_tag_is_refused(tmp_path):
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.yaml").write_text(f"format: pepler-run/1\nconfig: {python_tag(marker)}\n")
    result = invoke("generate", run, "--out", tmp_path / "p.jsonl")
    assert result.exit_code == 1
    assert f"{run / 'manifest.yaml'}: " in one_line_error(result)
    assert not marker.exists()


# ------------------------------------------------------------------------------- what the code may call


def _calls(attribute: str) -> list[tuple[Path, ast.Call]]:
    found = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == attribute
                ):
                    found.append((path, node))
    return found


def _receiver(call: ast.Call) -> str:
    return ast.unparse(call.func.value)  # type: ignore[attr-defined]


def _keywords(call: ast.Call) -> set[str | None]:
    return {keyword.arg for keyword in call.keywords}  # None: a **mapping


def test_every_transformers_auto_load_says_whether_to_run_code():
    """An Auto* load without trust_remote_code may ask on the terminal whether to run a model's code."""
    calls = [
        (path, call)
        for attribute in ("from_pretrained", "from_config")
        for path, call in _calls(attribute)
        if _receiver(call).startswith("Auto")
    ]
    assert len(calls) >= 6  # the audit looks where the loads are
    unsaid = [
        f"{path.name}:{call.lineno}" for path, call in calls if "trust_remote_code" not in _keywords(call)
    ]
    assert unsaid == []


def test_model_weights_are_read_from_safetensors_or_gguf_only():
    calls = [(p, c) for p, c in _calls("from_pretrained") if _receiver(c) == "AutoModelForCausalLM"]
    assert calls
    # use_safetensors comes through **PRETRAINED_OPTIONS; a GGUF file holds tensors, not a pickle.
    unsafe = [
        f"{p.name}:{c.lineno}"
        for p, c in calls
        if not ({None, "use_safetensors", "gguf_file"} & _keywords(c))
    ]
    assert unsafe == []
    from pepler_cli.backbones import PRETRAINED_OPTIONS

    assert PRETRAINED_OPTIONS == {"use_safetensors": True}


def test_nothing_reads_yaml_pickles_or_torch_files_unsafely():
    risky = {
        ("yaml", "load"),
        ("yaml", "unsafe_load"),
        ("yaml", "full_load"),
        ("pickle", "load"),
        ("pickle", "loads"),
        ("torch", "load"),
    }
    found = [
        f"{path.name}:{call.lineno}"
        for attribute in {name for _, name in risky}
        for path, call in _calls(attribute)
        if (_receiver(call), attribute) in risky
    ]
    assert found == []
    assert _calls("safe_load")  # YAML is read, through the safe loader


# ------------------------------------------------------------------------------------ --trust-remote-code


class _Probe:
    """gpt2-tiny under another name, noting the trust_remote_code of every load_model call."""

    name = "trust-probe"
    description = "gpt2-tiny that records how it was loaded"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[bool] = []

    def load_model(self, path=None, *, trust_remote_code: bool = False):
        self.calls.append(trust_remote_code)
        return self.inner.load_model(path)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def probe(tiny_backbone):
    plugin = _Probe(tiny_backbone)
    registry.register("backbone", plugin)
    try:
        yield plugin
    finally:
        registry.unregister("backbone", plugin.name)


def test_trust_remote_code_is_off_unless_asked_and_then_passed(probe, tiny_backbone):
    load_backbone_model(probe, None)
    load_backbone_model(probe, None, trust_remote_code=True)
    assert probe.calls == [False, True]


def test_a_backbone_that_runs_no_code_refuses_the_flag(tiny_backbone, nete_tiny_data, tmp_path):
    with pytest.raises(PeplerError, match="backbone 'gpt2-tiny' does not take it"):
        load_backbone_model(tiny_backbone, None, trust_remote_code=True)
    run = tmp_path / "run"
    result = invoke(
        "train",
        "--data",
        nete_tiny_data,
        "--out",
        run,
        "--backbone",
        "gpt2-tiny",
        "--trust-remote-code",
        *TRAIN,
    )
    assert result.exit_code == 2
    assert "--trust-remote-code: backbone 'gpt2-tiny' does not take it" in one_line_error(result)
    assert not run.exists()


def test_the_run_records_trust_remote_code_and_loading_it_passes_the_same(probe, nete_tiny_data, tmp_path):
    run = tmp_path / "run"
    trained = invoke(
        "train",
        "--data",
        nete_tiny_data,
        "--out",
        run,
        "--backbone",
        "trust-probe",
        "--trust-remote-code",
        *TRAIN,
    )
    assert trained.exit_code == 0, trained.output
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    assert (
        manifest["backbone"]["trust_remote_code"] is True and manifest["config"]["trust_remote_code"] is True
    )
    assert probe.calls == [True]
    # A run directory does not vouch for itself: loading it needs the user's own --trust-remote-code.
    refused = invoke("generate", run, "--out", tmp_path / "p.jsonl", "--limit", "2", "--device", "cpu")
    assert refused.exit_code == 1 and "pass --trust-remote-code if you trust it" in one_line_error(refused)
    assert probe.calls == [True] and not (tmp_path / "p.jsonl").exists()
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
    assert probe.calls == [True, True]  # generate loaded the frozen backbone as the run was trained


def test_without_the_flag_the_run_records_false_and_loads_without_it(probe, nete_tiny_data, tmp_path):
    run = tmp_path / "run"
    trained = invoke("train", "--data", nete_tiny_data, "--out", run, "--backbone", "trust-probe", *TRAIN)
    assert trained.exit_code == 0, trained.output
    assert yaml.safe_load((run / "manifest.yaml").read_text())["backbone"]["trust_remote_code"] is False
    assert invoke("export", run, "--out", tmp_path / "export").exit_code == 0
    assert probe.calls == [False, False]


def test_a_saved_architecture_of_an_unknown_type_is_refused_not_built_from_code():
    from pepler_cli.plugins import get_backbone

    with pytest.raises(
        PeplerError, match="'my-custom-lm': transformers cannot build it without its own code"
    ):
        get_backbone("hf-causal").build_model({"model_type": "my-custom-lm", "hidden_size": 8})
