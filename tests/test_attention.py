"""`pepler attention`: the last layer's attention over the prompt and the words, trained and --before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pepler_cli.attention import attention_map, initial_run_model
from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
from pepler_cli.errors import PeplerError
from pepler_cli.modeling.pepler_plugin import PEPLER
from pepler_cli.run_model import load_run
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.train import train as train_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run_and_pair(nete_tiny_data, tmp_path_factory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("attention") / "run"
    config = TrainConfig(
        data=nete_tiny_data, out=out, backbone="gpt2-tiny", epochs=2, batch_size=8, logger="none"
    )
    train_run(config, "test", SilentReporter())
    record = json.loads((nete_tiny_data / "records.jsonl").read_text().splitlines()[0])
    return out, record["user"], record["item"]


def test_the_heatmap_holds_one_row_per_generated_word(run_and_pair, tmp_path):
    run, user, item = run_and_pair
    drawn = attention_map(run, user, item, tmp_path / "after.png")
    assert drawn["tokens"][:3] == ["<user>", "<item>", "<bos>"]
    assert drawn["title"] == f"run: last-layer attention, user {user}, item {item}"
    words = len(drawn["tokens"]) - 3
    assert len(drawn["weights"]) == max(words, 1)
    for offset, row in enumerate(drawn["weights"]):
        position = 3 + offset if words else 2
        assert sum(row) == pytest.approx(1.0, abs=1e-4)  # a softmax over what the word may attend to
        assert all(weight == 0.0 for weight in row[position + 1 :])  # causal: nothing after itself
    image = Image.open(tmp_path / "after.png")
    image.load()
    assert image.size[0] > 200


def test_before_training_differs_and_the_cli_says_where_it_wrote(run_and_pair, tmp_path):
    run, user, item = run_and_pair
    after = attention_map(run, user, item, tmp_path / "after.svg")
    before = attention_map(run, user, item, tmp_path / "before.svg", before=True)
    assert before["title"].endswith("(before training)")
    assert "(before training)" in (tmp_path / "before.svg").read_text()
    assert before["weights"] != after["weights"]
    result = runner.invoke(
        app, ["attention", str(run), "--user", user, "--item", item, "--out", str(tmp_path / "a.png")]
    )
    assert result.exit_code == 0, result.output
    assert "attention on the user and item vectors" in result.output


def test_an_unknown_user_is_one_line(run_and_pair, tmp_path):
    run, _, item = run_and_pair
    result = runner.invoke(
        app, ["attention", str(run), "--user", "nobody", "--item", item, "--out", str(tmp_path / "a.png")]
    )
    assert result.exit_code != 0 and "nobody" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a.png").exists()


def _train_capturing_start(monkeypatch, data: Path, out: Path, **options) -> dict:
    """Train a run and return a copy of its model's whole state as training started (before any step)."""
    start: dict = {}
    build = PEPLER.build

    def capturing(setup):
        built = build(setup)
        if not start:  # the first build is the start; FSDP builds again to gather, not here
            start.update({k: v.detach().clone() for k, v in built.model.state_dict().items()})
        return built

    monkeypatch.setattr(PEPLER, "build", capturing)
    config = TrainConfig(
        data=data, out=out, backbone="gpt2-tiny", epochs=1, batch_size=8, logger="none", **options
    )
    train_run(config, "test", SilentReporter())
    return start


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"from_scratch": True, "seed": 7},
        {"rating_head": "mlp", "strategy": "sequential-lora", "seed": 3},
    ],
    ids=["pretrained", "from-scratch", "rating-head-and-lora"],
)
def test_before_is_exactly_the_model_training_started_from(monkeypatch, nete_tiny_data, tmp_path, options):
    start = _train_capturing_start(monkeypatch, nete_tiny_data, tmp_path / "run", **options)
    loaded = load_run(tmp_path / "run", torch.device("cpu"))
    rebuilt = initial_run_model(loaded).state_dict()
    assert set(rebuilt) == set(start)
    different = [name for name in start if not rebuilt[name].equal(start[name])]
    assert different == []
    trained = loaded.model.state_dict()
    assert not trained["user_embeddings.weight"].equal(start["user_embeddings.weight"])  # training moved it


def test_before_refuses_a_start_it_cannot_rebuild(run_and_pair):
    run = run_and_pair[0]
    loaded = load_run(run, torch.device("cpu"))
    assert loaded.manifest["initial"]["prompt_sha256"]
    loaded.manifest["initial"]["prompt_sha256"] = "0" * 64  # as if another torch had drawn other numbers
    with pytest.raises(PeplerError, match="initial.prompt_sha256"):
        initial_run_model(loaded)
