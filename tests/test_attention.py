"""`pepler attention`: the last layer's attention over the prompt and the words, trained and --before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from pepler_cli.attention import attention_map
from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
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
