"""The baselines through pepler's own commands: listed, trained, resumed, generated, scored, compared, refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from pepler_baselines.vocabulary import WordVocabulary
from safetensors.torch import load_file
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.config import TrainConfig
from pepler_cli.errors import PeplerError
from pepler_cli.run_model import load_run
from pepler_cli.training.checkpoint import checkpoint_dir, is_checkpoint
from pepler_cli.training.loop import SilentReporter
from pepler_cli.training.train import train as train_run

runner = CliRunner()

# Small sizes, so that every model trains in seconds; the authors' defaults are in family.py.
TINY = {
    "nrt": ["emsize=16", "nhid=24", "nlayers=2"],
    "att2seq": ["emsize=8", "nhid=24"],
    "peter": ["emsize=16", "nhead=2", "nhid=32"],
}
VARIANTS = {  # name: (model, extra train options)
    "nrt": ("nrt", []),
    "att2seq": ("att2seq", []),
    "peter": ("peter", []),
    "peter+": ("peter", ["--feature-hint", "given"]),
}


def train_args(data: Path, out: Path, model: str, *extra: str) -> list[str]:
    args = [
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--logger",
        "none",
    ]
    for option in TINY[model]:
        args += ["--model-option", option]
    return [*args, *extra]


@pytest.fixture(scope="module")
def trained(nete_tiny_data, tmp_path_factory) -> dict[str, Path]:
    """One run of each variant on the tiny dataset (split 1)."""
    root = tmp_path_factory.mktemp("baselines")
    runs = {}
    for name, (model, extra) in VARIANTS.items():
        result = runner.invoke(app, train_args(nete_tiny_data, root / name, model, *extra))
        assert result.exit_code == 0, result.output
        runs[name] = root / name
    return runs


def test_plugins_lists_the_three_models():
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    for name in ("nrt", "att2seq", "peter"):
        assert name in result.output


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_model_trains_generates_scores_and_compares(trained, nete_tiny_data, tmp_path, name):
    run = trained[name]
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    model = VARIANTS[name][0]
    assert manifest["config"]["model"] == model
    assert manifest["config"]["backbone"] is None and manifest["model"]["max_tokens"] == 15
    assert manifest["plugins"]["model"]["package"] == "pepler-baselines"
    assert set(load_file(str(run / "model.safetensors"))) == set(
        load_run(run, torch.device("cpu")).model.network.state_dict()
    )
    preds = tmp_path / "preds.jsonl"
    result = runner.invoke(app, ["generate", str(run), "--out", str(preds)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert lines and all(len(line["generated"].split()) <= 15 for line in lines)
    assert ("predicted_rating" in lines[0]) == (model != "att2seq")
    result = runner.invoke(app, ["score", str(preds), "--data", str(nete_tiny_data)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["compare", str(run), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert f"| {model} |" in result.output
    if name == "peter+":
        assert "†" in result.output and "given" in result.output


def test_decoding_options_work_for_a_baseline(trained, tmp_path):
    run = trained["nrt"]
    greedy, beam1 = tmp_path / "g.jsonl", tmp_path / "b.jsonl"
    assert runner.invoke(app, ["generate", str(run), "--out", str(greedy)]).exit_code == 0
    result = runner.invoke(
        app, ["generate", str(run), "--out", str(beam1), "--decoding", "beam", "--beams", "1"]
    )
    assert result.exit_code == 0, result.output
    assert _texts(greedy) == _texts(beam1)  # beam search with one beam is greedy decoding
    for options in (
        ["--decoding", "beam", "--beams", "3"],
        ["--decoding", "top-k", "--no-repeat-ngram", "2"],
    ):
        out = tmp_path / f"{options[1]}.jsonl"
        result = runner.invoke(app, ["generate", str(run), "--out", str(out), *options])
        assert result.exit_code == 0, result.output


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["generated"] for line in path.read_text().splitlines()]


def _epoch_losses(run: Path) -> list[dict]:
    """Each epoch's record without its timings."""
    epochs = yaml.safe_load((run / "manifest.yaml").read_text())["stages"][0]["epochs"]
    return [{k: v for k, v in e.items() if k not in ("seconds", "tokens_per_second")} for e in epochs]


class StopAfter:
    """Stands in for the signal handlers: "receives" SIGTERM after the given number of optimizer steps."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def __call__(self):
        import contextlib

        @contextlib.contextmanager
        def handlers():
            def asked() -> str | None:
                self.left -= 1
                return "SIGTERM" if self.left < 0 else None

            yield asked

        return handlers()


def _config(model: str, data: Path, out: Path, **options) -> TrainConfig:
    tiny = dict(option.split("=") for option in TINY[model])
    return TrainConfig(
        data=data, out=out, model=model, model_options=tiny, epochs=3, batch_size=8, logger="none", **options
    )


@pytest.mark.parametrize("model", list(TINY))
def test_an_interrupted_run_resumes_to_the_same_weights(
    nete_tiny_data, tmp_path, monkeypatch, request, model
):
    """Adam, clipping, SGD with PETER's learning-rate decay, dropout: a resumed run continues exactly where it
    stopped (in the second epoch, after step 8)."""
    import pepler_cli.training.train as train_module

    # One thread: the same arithmetic in both trainings whatever else the machine runs (a BLAS may pick another
    # split of the work under load, and PETER's SGD at learning rate 1 turns a last-bit difference into others).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    whole = tmp_path / "whole"
    train_run(_config(model, nete_tiny_data, whole), "test", SilentReporter())
    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "stop_on_signals", StopAfter(8))
    with pytest.raises(PeplerError) as stopped:
        train_run(_config(model, nete_tiny_data, out), "pepler train --out run", SilentReporter())
    assert stopped.value.exit_code == 143 and is_checkpoint(checkpoint_dir(out))
    monkeypatch.undo()
    train_run(_config(model, nete_tiny_data, out, resume=True), "test", SilentReporter())
    ours, theirs = load_file(str(out / "model.safetensors")), load_file(str(whole / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    assert _epoch_losses(out) == _epoch_losses(whole)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompt", "discrete"], "--prompt: an option of PEPLER; model nrt does not take it"),
        (["--backbone", "gpt2-tiny"], "--backbone: an option of PEPLER"),
        (["--rating-head", "mlp"], "--rating-head: an option of PEPLER"),
        (["--feature-hint", "given"], "model nrt reads no feature"),
        (["--model-option", "layers=3"], "--model-option layers: not an option of nrt"),
        (["--model-option", "emsize=big"], "--model-option emsize='big': expected int"),
    ],
)
def test_options_a_baseline_cannot_use_are_one_line(nete_tiny_data, tmp_path, extra, message):
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "--model", "nrt", "--data", str(nete_tiny_data), "--out", str(out), *extra]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_an_unknown_model_is_one_line(nete_tiny_data, tmp_path):
    result = runner.invoke(
        app, ["train", "--model", "nope", "--data", str(nete_tiny_data), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output and "peter" in result.output


def test_damaged_weights_are_refused_in_one_line(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained["nrt"], copy)
    (copy / "model.safetensors").write_bytes(b"not safetensors")
    result = runner.invoke(app, ["generate", str(copy), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code != 0 and "model.safetensors" in result.output and "Traceback" not in result.output


def test_the_vocabulary_follows_the_authors_rule():
    texts = ["b a a", "c b", "d"]
    kept_all = WordVocabulary.count(texts, size=10)
    assert kept_all.words[4:] == ["b", "a", "c", "d"]  # not cut: in the order first seen
    cut = WordVocabulary.count(texts, size=2)
    assert cut.words[4:] == ["b", "a"]  # cut: by count, ties to the word seen first
    with_features = WordVocabulary.count(["the front desk"], size=10, features=["front desk"])
    assert with_features.words[4:] == ["the", "front", "desk", "front desk"]
    assert with_features(["front desk"])["input_ids"] == [[7]]  # a feature is one token (PETER+)
    assert with_features(["the front desk ok"])["input_ids"] == [[4, 5, 6, 3]]  # words; "ok" is <unk>
    assert with_features.batch_decode([[4, 3, 1]], skip_special_tokens=True) == ["the <unk>"]


def test_the_vocabulary_survives_a_round_trip(tmp_path):
    vocabulary = WordVocabulary.count(["ä b", "c"], size=10)
    vocabulary.save_pretrained(str(tmp_path))
    assert WordVocabulary.load(tmp_path).words == vocabulary.words
    (tmp_path / "vocabulary.json").write_text("{}")
    with pytest.raises(PeplerError, match="vocabulary.json: not a word vocabulary"):
        WordVocabulary.load(tmp_path)


def test_a_sweep_and_a_report_hold_pepler_and_a_baseline_side_by_side(nete_tiny_data, tmp_path):
    """One grid over two config files: PEPLER on the tiny GPT-2 and NRT, each on two splits, folded by split."""
    pepler = tmp_path / "pepler.yaml"
    pepler.write_text("backbone: gpt2-tiny\nstrategy: joint\nepochs: 1\nbatch-size: 16\n")
    nrt = tmp_path / "nrt.yaml"
    nrt.write_text("model: nrt\nmodel-options: {emsize: 16, nhid: 16}\nepochs: 2\n")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "mixed",
                "data": str(nete_tiny_data),
                "out": str(tmp_path / "out"),
                "train": {"logger": "none"},
                "grid": {"config": [str(pepler), str(nrt)], "split": [1, 2]},
                "compare": {"group-by": ["split"]},
            }
        )
    )
    result = runner.invoke(app, ["sweep", str(sweep)])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [group["n"] for group in comparison["groups"]] == [2, 2]
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", *map(str, runs), "--out", str(report)])
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert "<td>nrt</td>" in page and "<td>pepler</td>" in page
