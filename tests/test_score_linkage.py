"""`pepler score` links scores to the run that made the predictions, through generate's preds.meta.yaml."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.files import sha256_file
from pepler_cli.predictions import Prediction, write_predictions

runner = CliRunner()

PREDICTIONS = [
    Prediction("u1", "i1", "the room was clean", "the room is clean", "room", 5.0, 4.6),
    Prediction("u2", "i2", "the staff is friendly", "the room is clean", "staff", 3.0, 3.5),
    Prediction("u3", "i3", "great location", "friendly staff , great location", "location", 2.0, 2.2),
]
RUN_CONFIG = {
    "prompt": "continuous",
    "strategy": "sequential",
    "rating_head": "mf",
    "rating_weight": 0.01,
    "backbone": "gpt2-tiny",
}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run directory as `pepler train` leaves it, minus real weights."""
    directory = tmp_path / "runs" / "hotels-1"
    (directory / "tokenizer").mkdir(parents=True)
    (directory / "prompt.safetensors").write_bytes(b"\x00weights\x01" * 10)
    (directory / "users.txt").write_text("u1\nu2\nu3\n", encoding="utf-8")
    (directory / "items.txt").write_text("i1\ni2\ni3\n", encoding="utf-8")
    (directory / "tokenizer" / "vocab.json").write_text("{}", encoding="utf-8")
    manifest = {
        "format": "pepler-run/1",
        "name": "hotels-1",
        "config": RUN_CONFIG,
        "dataset": {"path": "data/hotels", "split": 1, "fingerprint": "abc"},
        "stages": [{"name": "prompt", "best_epoch": 3}],
        "files": {
            str(p.relative_to(directory)): sha256_file(p) for p in sorted(directory.rglob("*")) if p.is_file()
        },
    }
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    (directory / "manifest.yaml").chmod(0o644)
    return directory


def write_meta(
    preds: Path,
    run: Path,
    *,
    decoding: Any = None,
    options: dict[str, Any] | None = None,
    sha256: str | None = None,
    name: str = "hotels-1",
    feature_hint: dict[str, Any] | None = None,
) -> Path:
    config: dict[str, Any] = {"run": str(run), "split": "test", "out": str(preds), "max_tokens": 20}
    if decoding is not None:
        config["decoding"] = decoding
    config.update(options or {})
    meta = {
        "format": "pepler-predictions-meta/1",
        "pepler_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "command": "pepler generate ...",
        "config": config,
        "run": {
            "path": str(run.resolve()),
            "name": name,
            "prompt": "continuous",
            "strategy": "sequential",
            "rating_head": "mf",
            "backbone": "gpt2-tiny",
        },
        "dataset": {"path": "data/hotels", "fingerprint": "abc", "split_number": 1, "split": "test"},
        "predictions": {"path": str(preds), "count": 3, "sha256": sha256 or sha256_file(preds)},
    }
    if feature_hint is not None:  # as generate writes it (docs/formats.md); older sidecars have none
        meta["feature_hint"] = feature_hint
    path = preds.with_name(preds.name.removesuffix(".jsonl") + ".meta.yaml")
    path.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def preds(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "preds.jsonl"
    write_predictions(path, PREDICTIONS)
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of a directory (hidden ones too) and its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def score(*args: str) -> Any:
    return runner.invoke(app, ["score", *args], env={"COLUMNS": "200"})


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_linked_scores_name_the_run_and_are_recorded_in_it(
    preds: Path, run: Path, scored_dataset: Path
) -> None:
    write_meta(preds, run)
    before = snapshot(run)
    manifest_before = read_yaml(run / "manifest.yaml")

    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr
    assert "recorded the scores in" in result.stderr and "'split 1 test'" in result.stderr

    document = read_yaml(preds.with_name("preds.scores.yaml"))
    assert document["run"] == {
        "path": str(run.resolve()),
        "name": "hotels-1",
        "model": None,  # a sidecar from before model plugins names none (compare reads it as pepler)
        "prompt": "continuous",
        "strategy": "sequential",
        "rating_head": "mf",
        "backbone": "gpt2-tiny",
    }
    generation = document["generation"]
    assert generation["key"] == "split 1 test"
    assert generation["dataset"]["split_number"] == 1 and generation["dataset"]["split"] == "test"
    assert generation["decoding"] == {"method": "greedy"}
    assert generation["config"]["max_tokens"] == 20

    # Only manifest.yaml changed, and in it only the new `scores:` mapping; no temporary file left over.
    after = snapshot(run)
    assert set(after) == set(before)
    assert {name for name in before if before[name] != after[name]} == {"manifest.yaml"}
    manifest = read_yaml(run / "manifest.yaml")
    assert {k: v for k, v in manifest.items() if k != "scores"} == manifest_before
    assert list(manifest)[-1] == "scores"
    entry = manifest["scores"]["split 1 test"]
    for key, value in document["scores"].items():
        assert entry[key] == pytest.approx(value)
    assert entry["n"] == 3
    assert entry["predictions"] == str(preds.resolve())
    assert entry["predictions_sha256"] == sha256_file(preds)
    assert entry["scores_file"] == str(preds.with_name("preds.scores.yaml").resolve())
    assert entry["scored"].endswith("+00:00")
    # The manifest keeps its permissions and every listed file still has its hash.
    assert stat.S_IMODE((run / "manifest.yaml").stat().st_mode) == 0o644
    for name, digest in manifest["files"].items():
        assert sha256_file(run / name) == digest

    # And `pepler compare` reads it back from the run.
    compared = runner.invoke(app, ["compare", str(run), "--format", "json"])
    assert compared.exit_code == 0, compared.output
    (row,) = json.loads(compared.stdout)
    assert (row["name"], row["strategy"], row["head"], row["backbone"], row["key"]) == (
        "hotels-1",
        "sequential",
        "mf",
        "gpt2-tiny",
        "split 1 test",
    )
    assert row["scores"]["bleu_1"] == pytest.approx(document["scores"]["bleu_1"])


def test_other_decoding_gets_its_own_entry(
    preds: Path, run: Path, scored_dataset: Path, tmp_path: Path
) -> None:
    write_meta(preds, run)
    assert score(str(preds), "--data", str(scored_dataset)).exit_code == 0

    beam = tmp_path / "out" / "beam.jsonl"
    write_predictions(beam, PREDICTIONS[:2])
    write_meta(beam, run, decoding="beam", options={"beams": 4, "top_k": 50, "top_p": 0.9})
    result = score(str(beam), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert read_yaml(tmp_path / "out" / "beam.scores.yaml")["generation"]["key"] == "split 1 test, beam 4"
    scores = read_yaml(run / "manifest.yaml")["scores"]
    assert list(scores) == ["split 1 test", "split 1 test, beam 4"]
    assert scores["split 1 test"]["n"] == 3 and scores["split 1 test, beam 4"]["n"] == 2

    # Scoring the same predictions again replaces their entry, in place.
    assert score(str(preds), "--data", str(scored_dataset)).exit_code == 0
    assert list(read_yaml(run / "manifest.yaml")["scores"]) == ["split 1 test", "split 1 test, beam 4"]


GIVEN = {"mode": "given", "predictor": None, "feature": None, "reads_test_record": True}
PREDICTED = {"mode": "predicted", "predictor": "counts", "feature": None, "reads_test_record": False}


def test_a_given_hint_is_copied_printed_and_keyed_apart(
    preds: Path, run: Path, scored_dataset: Path, tmp_path: Path
) -> None:
    write_meta(preds, run)  # an older sidecar: no feature_hint, i.e. none
    plain = score(str(preds), "--data", str(scored_dataset))
    assert plain.exit_code == 0, plain.output
    assert "feature hint" not in plain.stderr
    assert read_yaml(preds.with_name("preds.scores.yaml"))["feature_hint"] == {
        "mode": "none",
        "predictor": None,
        "feature": None,
        "reads_test_record": False,
    }

    given = tmp_path / "out" / "given.jsonl"
    write_predictions(given, PREDICTIONS[:2])
    write_meta(given, run, feature_hint=GIVEN)
    result = score(str(given), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert (
        "feature hint: given feature (reads the test record) — an upper bound, not comparable with runs that "
        "do not read it"
    ) in result.stderr
    document = read_yaml(tmp_path / "out" / "given.scores.yaml")
    assert document["feature_hint"] == GIVEN
    assert document["generation"]["key"] == "split 1 test, given feature"
    # Its own entry in the run, with the hint: the plain scores of the split are not overwritten.
    scores = read_yaml(run / "manifest.yaml")["scores"]
    assert list(scores) == ["split 1 test", "split 1 test, given feature"]
    assert "feature_hint" not in scores["split 1 test"]
    assert scores["split 1 test, given feature"]["feature_hint"] == GIVEN
    assert scores["split 1 test, given feature"]["n"] == 2


def test_a_predicted_hint_is_printed_without_the_warning(
    preds: Path, run: Path, scored_dataset: Path
) -> None:
    write_meta(preds, run, decoding="beam", options={"beams": 4}, feature_hint=PREDICTED)
    result = score(str(preds), "--data", str(scored_dataset), "--json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout stays parseable: the hint is said on stderr
    assert (
        "feature hint: predicted feature (counts)\n" in result.stderr and "upper bound" not in result.stderr
    )
    document = read_yaml(preds.with_name("preds.scores.yaml"))
    assert document["generation"]["key"] == "split 1 test, beam 4, predicted feature (counts)"


def test_a_malformed_hint_is_one_error_line(preds: Path, run: Path, scored_dataset: Path) -> None:
    sidecar = write_meta(preds, run, feature_hint={"mode": "oracle"})
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"error: {sidecar}: field 'feature_hint.mode' must be one of none, given, predicted, chosen, "
        "got 'oracle'"
    )


def test_hash_mismatch_is_a_note_and_no_link(preds: Path, run: Path, scored_dataset: Path) -> None:
    write_meta(preds, run, sha256=hashlib.sha256(b"other predictions").hexdigest())
    before = snapshot(run)
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "note: not linked to a run:" in result.stderr
    assert "predictions.sha256 differs" in result.stderr
    document = read_yaml(preds.with_name("preds.scores.yaml"))
    assert "run" not in document and "generation" not in document
    assert snapshot(run) == before


def test_no_record_links_but_leaves_the_run_alone(preds: Path, run: Path, scored_dataset: Path) -> None:
    write_meta(preds, run)
    before = snapshot(run)
    result = score(str(preds), "--data", str(scored_dataset), "--no-record")
    assert result.exit_code == 0, result.output
    assert "recorded" not in result.stderr
    assert read_yaml(preds.with_name("preds.scores.yaml"))["run"]["name"] == "hotels-1"
    assert snapshot(run) == before


def test_missing_run_is_a_note(preds: Path, run: Path, scored_dataset: Path, tmp_path: Path) -> None:
    write_meta(preds, tmp_path / "runs" / "gone")
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "note: scores not recorded in the run:" in result.stderr and "does not exist" in result.stderr
    assert read_yaml(preds.with_name("preds.scores.yaml"))["run"]["path"] == str(
        (tmp_path / "runs" / "gone").resolve()
    )


def test_a_different_run_at_the_path_is_left_alone(preds: Path, run: Path, scored_dataset: Path) -> None:
    write_meta(preds, run, name="another-run")
    before = snapshot(run)
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "now holds run 'hotels-1', not 'another-run'" in result.stderr
    assert snapshot(run) == before


def assert_scored_but_not_recorded(result: Any, preds: Path, note: str) -> None:
    """Success, the one note, and the scores in scores.yaml all the same."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: scores not recorded in the run: {note}"], result.stderr
    assert read_yaml(preds.with_name("preds.scores.yaml"))["n"] == len(PREDICTIONS)


@pytest.mark.parametrize("how", ["chmod", "injected"])
def test_read_only_run_is_a_note(
    preds: Path, run: Path, scored_dataset: Path, monkeypatch: pytest.MonkeyPatch, refusals, how: str
) -> None:
    """A read-only run for real (chmod, which cannot stop root), and as root: access says no for the run's
    files and any write into it would fail. Either way a note, exit 0, and the run left as it was."""
    write_meta(preds, run)
    before = snapshot(run)
    manifest = run.resolve() / "manifest.yaml"
    if how == "chmod":
        run.chmod(0o555)
        manifest.chmod(0o444)
        try:
            if os.access(run, os.W_OK):
                pytest.skip(
                    "chmod cannot stop this user (root): a read-only run is writable; run as another user "
                    "for the real thing (the 'injected' variant checks the same as root)"
                )
            result = score(str(preds), "--data", str(scored_dataset))
        finally:
            run.chmod(0o755)
            manifest.chmod(0o644)
    else:
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode, *args, **kwargs: (
                False
                if mode & os.W_OK and Path(path).resolve().is_relative_to(run.resolve())
                else real_access(path, mode, *args, **kwargs)
            ),
        )
        refusals.read_only_folder(run)
        result = score(str(preds), "--data", str(scored_dataset))
    assert_scored_but_not_recorded(result, preds, f"{manifest} is not writable (pass --no-record to skip)")
    assert snapshot(run) == before


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC], ids=["EACCES", "ENOSPC"])
def test_a_failed_write_into_the_run_is_a_note_and_leaves_it_whole(
    preds: Path, run: Path, scored_dataset: Path, refusals, code: int
) -> None:
    """The run looks writable but the atomic rewrite of its manifest fails at the last step (the rename): a
    note naming the manifest and why, exit 0, the old manifest byte for byte, no temporary file beside it."""
    write_meta(preds, run)
    before = snapshot(run)
    manifest = run.resolve() / "manifest.yaml"
    refusals.failing_rename(manifest, code)
    result = score(str(preds), "--data", str(scored_dataset))
    assert refusals.refused == [str(manifest)]
    assert_scored_but_not_recorded(result, preds, f"cannot write {manifest} ({os.strerror(code)})")
    assert snapshot(run) == before


def test_no_meta_no_link_no_note(preds: Path, scored_dataset: Path) -> None:
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr
    assert "run" not in read_yaml(preds.with_name("preds.scores.yaml"))


def test_broken_meta_is_a_note(preds: Path, run: Path, scored_dataset: Path) -> None:
    preds.with_name("preds.meta.yaml").write_text("run: [unclosed\n", encoding="utf-8")
    before = snapshot(run)
    result = score(str(preds), "--data", str(scored_dataset))
    assert result.exit_code == 0, result.output
    assert "note: not linked to a run:" in result.stderr and "not valid YAML" in result.stderr
    assert snapshot(run) == before


# generate's options as its GenerateConfig dumps them: every method's parameters, whichever was used.
GENERATE_OPTIONS = {"max_tokens": 20, "beams": 4, "top_k": 50, "top_p": 0.9, "temperature": 1.0, "seed": 1111}


@pytest.mark.parametrize(
    ("config", "label"),
    [
        ({}, "greedy"),
        ({**GENERATE_OPTIONS, "decoding": "greedy"}, "greedy"),
        ({**GENERATE_OPTIONS, "decoding": "beam"}, "beam 4"),
        ({**GENERATE_OPTIONS, "decoding": "top-k"}, "top-k 50"),
        ({**GENERATE_OPTIONS, "decoding": "top-p", "temperature": 0.7}, "top-p 0.9, temperature 0.7"),
    ],
)
def test_decoding_labels(config: dict[str, Any], label: str) -> None:
    from pepler_cli.evaluation.provenance import decoding_label, decoding_of

    assert decoding_label(decoding_of(config)) == label


def test_decoding_keeps_only_the_methods_parameters() -> None:
    from pepler_cli.evaluation.provenance import decoding_of

    assert decoding_of({**GENERATE_OPTIONS, "decoding": "greedy"}) == {"method": "greedy"}
    assert decoding_of({**GENERATE_OPTIONS, "decoding": "beam"}) == {"method": "beam", "beams": 4}
    assert decoding_of({**GENERATE_OPTIONS, "decoding": "top-p"}) == {
        "method": "top-p",
        "top_p": 0.9,
        "temperature": 1.0,
        "seed": 1111,
    }
