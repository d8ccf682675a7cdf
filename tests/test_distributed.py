"""torchrun + DDP on CPU: 2 gloo processes on loopback, launched through torch's own launcher.

A distributed run and a single-process run with the same global batch and seed end with the same weights;
only rank 0 writes; a distributed run resumes after its processes are killed; distributed generation writes
the same predictions, line for line, as a single process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pepler_cli.runs import read_manifest
from pepler_cli.training.checkpoint import PROGRESS_FILE, checkpoint_dir

REPO = Path(__file__).resolve().parent.parent
# Weights agree to float32 rounding: the ranks sum their gradients in another order than one process does.
TOLERANCE = 1e-5

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env() -> dict[str, str]:
    # One thread a process: two ranks on two cores, and the same arithmetic in every process.
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
    return [
        *launcher,
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "pepler_cli",
        *args,
    ]


def single(*args: str) -> list[str]:
    return [sys.executable, "-m", "pepler_cli", *args]


def run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, check=False, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def no_dropout_backbone(tmp_path_factory) -> Path:
    """A 1-layer GPT-2 without dropout as a local Hugging Face directory: with dropout, ranks would draw other
    masks than one process and the runs could not be compared weight for weight."""
    from pepler_gpt2 import bundled_tokenizer_dir
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("backbone") / "gpt2-no-dropout"
    config = GPT2Config(
        n_layer=1, n_embd=32, n_head=2, n_positions=128, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(directory)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(bundled_tokenizer_dir() / name, directory / name)
    return directory


def train_args(data: Path, out: Path, backbone: Path, *extra: str) -> list[str]:
    return [
        "train", "--data", str(data), "--out", str(out), "--backbone", "hf-causal", "--backbone-path",
        str(backbone), "--epochs", "2", "--batch-size", "8", "--rating-head", "mlp", "--seed", "3",
        "--device", "cpu", *extra,
    ]  # fmt: skip


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    found = load_file(str(run_dir / "prompt.safetensors"))
    found.update({f"lm.{k}": v for k, v in load_file(str(run_dir / "backbone.safetensors")).items()})
    return found


def assert_close_runs(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=TOLERANCE, atol=TOLERANCE, msg=name)
    for stage_a, stage_b in zip(read_manifest(a)["stages"], read_manifest(b)["stages"]):
        assert [e["epoch"] for e in stage_a["epochs"]] == [e["epoch"] for e in stage_b["epochs"]]
        for ea, eb in zip(stage_a["epochs"], stage_b["epochs"]):
            assert ea["valid_loss"] == pytest.approx(eb["valid_loss"], rel=TOLERANCE)
            assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=TOLERANCE)


def test_a_model_plugin_trains_under_ddp_as_in_one_process(nete_tiny_data, tmp_path):
    """Nothing in the distributed machinery knows the model: NRT (no dropout, so the ranks draw nothing) on two
    ranks and two micro-batches each trains the model one process trains."""
    args = [
        "train", "--model", "nrt", "--data", str(nete_tiny_data), "--epochs", "2", "--batch-size", "8",
        "--model-option", "emsize=16", "--model-option", "nhid=16", "--seed", "3", "--device", "cpu",
    ]  # fmt: skip
    run(single(*args, "--out", str(tmp_path / "one")))
    run(torchrun(*args, "--out", str(tmp_path / "ddp"), "--grad-accum", "2"))
    ours, theirs = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("ddp", "one"))
    assert ours.keys() == theirs.keys()
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=TOLERANCE, atol=TOLERANCE, msg=name)


@pytest.fixture(scope="module")
def single_run(nete_tiny_data, no_dropout_backbone, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    run(single(*train_args(nete_tiny_data, out, no_dropout_backbone)))
    return out


def test_two_ranks_train_what_one_process_trains_and_only_rank_0_writes(
    nete_tiny_data, no_dropout_backbone, single_run, tmp_path
):
    out = tmp_path / "runs" / "ddp"
    done = run(torchrun(*train_args(nete_tiny_data, out, no_dropout_backbone, "--grad-accum", "2")))
    assert_close_runs(out, single_run)
    manifest = read_manifest(out)
    assert manifest["distributed"] == {
        "world_size": 2, "per_rank_batch": 4, "grad_accum": 2, "micro_batch": 2, "backend": "gloo",
        "fsdp": False,
    }  # fmt: skip
    # Only rank 0 wrote: one run, no second checkpoint, no stray partial directories, one summary.
    assert sorted(p.name for p in out.parent.iterdir()) == ["ddp"]
    assert done.stderr.count("run written:") == 1


def test_fsdp_shards_the_tuned_backbone_and_trains_the_same_model(
    nete_tiny_data, no_dropout_backbone, single_run, tmp_path
):
    out = tmp_path / "run"
    # The prompt stage keeps DDP (the LM is frozen); the prompt+LM stage shards the LM over both ranks, and
    # its checkpoints and the run hold the whole model.
    run(torchrun(*train_args(nete_tiny_data, out, no_dropout_backbone, "--fsdp")))
    assert_close_runs(out, single_run)
    assert read_manifest(out)["distributed"]["fsdp"] is True


@pytest.mark.parametrize(
    ("extra", "stage", "resume_on"),
    [((), "prompt", "one process"), (("--fsdp",), "prompt+lm", "two ranks")],
    ids=["ddp-resumed-on-one-process", "fsdp-resumed-on-two-ranks"],
)
def test_a_killed_distributed_run_resumes(
    nete_tiny_data, no_dropout_backbone, single_run, tmp_path, extra, stage, resume_on
):
    out = tmp_path / "run"
    args = train_args(nete_tiny_data, out, no_dropout_backbone, "--checkpoint-every", "2", *extra)
    process = subprocess.Popen(
        torchrun(*args), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    # Killed inside an epoch of the given stage (the FSDP one: its sharded moments are saved whole).
    while not _inside_an_epoch_of(checkpoint_dir(out) / PROGRESS_FILE, stage):
        assert time.monotonic() < deadline and process.poll() is None, "no checkpoint inside an epoch"
        time.sleep(0.05)
    kill_tree(process.pid)  # the launcher and both ranks, at once
    process.wait()
    time.sleep(0.5)  # let the kernel reap the ranks (their locks go with them)
    assert not out.exists()
    # A distributed run may resume on another number of ranks.
    run(single(*args, "--resume") if resume_on == "one process" else torchrun(*args, "--resume"))
    assert_close_runs(out, single_run)


def _inside_an_epoch_of(path: Path, stage: str) -> bool:
    import yaml

    try:
        current = yaml.safe_load(path.read_text())["current_stage"]
    except (OSError, TypeError, KeyError, yaml.YAMLError):
        return False
    return current["name"] == stage and (current.get("position") or {}).get("batches_done", 0) >= 2


def test_distributed_generation_equals_single_process_generation(single_run, tmp_path):
    alone, together = tmp_path / "alone.jsonl", tmp_path / "together.jsonl"
    run(single("generate", str(single_run), "--out", str(alone), "--device", "cpu"))
    run(torchrun("generate", str(single_run), "--out", str(together), "--device", "cpu"))
    assert together.read_text().splitlines() == alone.read_text().splitlines()
    assert len(alone.read_text().splitlines()) > 5
    assert [json.loads(line)["user"] for line in together.read_text().splitlines()]


def kill_tree(root: int) -> None:
    """SIGKILL a process and all its descendants (torchrun's workers may sit in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    doomed, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        doomed.append(pid)
        frontier.extend(children.get(pid, []))
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (nccl, bf16, FSDP on GPUs)")
@pytest.mark.parametrize("extra", [(), ("--fsdp",)], ids=["ddp", "fsdp"])
def test_nccl_and_bf16_on_two_gpus(nete_tiny_data, no_dropout_backbone, tmp_path, extra):
    out = tmp_path / "run"
    args = train_args(nete_tiny_data, out, no_dropout_backbone, *extra)
    args[args.index("--device") + 1] = "cuda"
    run(torchrun(*args, "--precision", "bf16"))
    manifest = read_manifest(out)
    assert manifest["distributed"]["backend"] == "nccl" and manifest["device"]["precision"] == "bf16"
    assert manifest["distributed"]["fsdp"] is bool(extra)
    run(torchrun("generate", str(out), "--out", str(tmp_path / "preds.jsonl"), "--device", "cuda"))
    assert (tmp_path / "preds.jsonl").read_text().count("\n") > 5
