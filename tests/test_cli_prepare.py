"""``pepler prepare`` through the command line: exit codes, messages, the output directory."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.prepare import prepare_command
from pepler_cli.data import extraction

FIXTURES = Path(__file__).parent / "fixtures"
NETE = FIXTURES / "nete-tiny"
SAMPLE = FIXTURES / "amazon-musical-instruments-sample.jsonl"
DATA_FILES = sorted(
    ["manifest.yaml", "records.jsonl", "features.txt"]
    + [f"splits/{k}/{part}.index" for k in range(1, 6) for part in ("train", "validation", "test")]
)

app = typer.Typer()
app.command("prepare")(prepare_command)
app.command("noop")(lambda: None)  # two commands, so "prepare" is a subcommand as in the real CLI
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["prepare", *map(str, args)])


def files_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip().endswith(lines[0])  # the error is the last thing printed
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def nete(tmp_path):
    return Path(shutil.copytree(NETE, tmp_path / "TripAdvisor"))


def test_nete_dataset(tmp_path, nete, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("tripadvisor", "--source", nete)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "data" / "tripadvisor"
    assert files_in(out) == DATA_FILES
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["tripadvisor"]  # no temporary leftovers
    assert "9,765" in result.stderr and "Records / user" in result.stderr  # the paper's column beside ours
    assert result.stdout == ""
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["name"] == "tripadvisor" and manifest["counts"]["records"] == 60
    assert manifest["config"]["source_or_dataset"] == "tripadvisor"
    assert manifest["config"]["out"] == "data/tripadvisor"


def test_json_output(tmp_path, nete):
    result = invoke("amazon", "--source", nete, "--out", tmp_path / "a", "--json", "--name", "movies")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["out"] == str(tmp_path / "a") and printed["manifest"]["name"] == "movies"
    assert len(printed["manifest"]["fingerprint"]) == 64


def test_missing_source_explains_where_the_datasets_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("yelp")
    assert_one_error(
        result,
        2,
        "--source DIR",
        "github.com/lileipisces/PEPLER",
        "Yelp",
        "DIR/reviews.pickle",
        "DIR/1..5/{train,validation,test}.index",
    )
    assert list(tmp_path.iterdir()) == []


def test_source_without_the_files(tmp_path, nete):
    (nete / "reviews.pickle").unlink()
    result = invoke("tripadvisor", "--source", nete, "--out", tmp_path / "out")
    assert_one_error(result, 2, "missing", "reviews.pickle", "github.com/lileipisces/PEPLER")


def test_bad_record_one_line_no_output(tmp_path, nete):
    reviews = pickle.loads((nete / "reviews.pickle").read_bytes())
    reviews[17]["rating"] = "five"
    (nete / "reviews.pickle").write_bytes(pickle.dumps(reviews, protocol=2))
    out = tmp_path / "out" / "ta"
    result = invoke("tripadvisor", "--source", nete, "--out", out)
    assert_one_error(result, 1, str(nete / "reviews.pickle"), "record 17", "field 'rating'")
    assert not out.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_malicious_pickle_runs_nothing(tmp_path, nete):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (nete / "reviews.pickle").write_bytes(pickle.dumps([Evil()], protocol=2))
    out = tmp_path / "out"
    result = invoke("tripadvisor", "--source", nete, "--out", out)
    assert_one_error(result, 1, "refused to unpickle", f"{os.system.__module__}.system")
    assert not marker.exists()
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, nete):
    out = tmp_path / "ta"
    assert invoke("tripadvisor", "--source", nete, "--out", out).exit_code == 0
    before = (out / "manifest.yaml").read_text()
    result = invoke("tripadvisor", "--source", nete, "--out", out)
    assert_one_error(result, 1, "already exists", "--overwrite")
    assert (out / "manifest.yaml").read_text() == before
    result = invoke("tripadvisor", "--source", nete, "--out", out, "--overwrite")
    assert result.exit_code == 0 and files_in(out) == DATA_FILES


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["missing SOURCE_OR_DATASET"]),
        ([SAMPLE], ["need --name NAME"]),
        (["no/such/file.json"], ["--name"]),
        (["no/such/file.json", "--name", "x"], ["neither one of the paper's datasets", "no/such/file.json"]),
        ([SAMPLE, "--name", "x", "--source", "."], ["--source is for the paper's datasets"]),
        (["tripadvisor", "--seed", "3"], ["--seed: only for raw review files"]),
        (["tripadvisor", "--user-field", "uid"], ["--user-field: only for raw review files"]),
        ([SAMPLE, "--name", "../up"], ["--name '../up'"]),
        ([SAMPLE, "--name", "x", "--max-explanation-tokens", "0"], ["--max-explanation-tokens"]),
    ],
)
def test_usage_errors(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    assert_one_error(invoke(*args), 2, *fragments)


def _fake_extract(texts, progress=None, reasons=None):
    # The feature is the text's first word, so it is within every explanation's first 20 tokens.
    return [
        SimpleNamespace(feature=t.split()[0].lower(), opinion="good", sentence=t, sentiment=1)
        if t.split()
        else None
        for t in texts
    ]


def test_raw_reviews_with_options_and_config(tmp_path, monkeypatch):
    monkeypatch.setattr(extraction, "extract_explanations", _fake_extract)
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    path = tmp_path / "renamed.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"who": r["reviewerID"], "what": r["asin"], "stars": r["overall"], "body": r["reviewText"]}
            )
            + "\n"
            for r in rows
        )
    )
    config = tmp_path / "prepare.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "user-field": "who",
                "item_field": "what",
                "rating-field": "stars",
                "text-field": "body",
                "seed": 5,
                "name": "from-config",
            }
        )
    )
    out = tmp_path / "mi"
    result = invoke(path, "--config", config, "--seed", "11", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert files_in(out) == DATA_FILES
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["name"] == "from-config"
    assert manifest["splits"]["seed"] == 11  # the flag beats the file
    assert manifest["config"]["user_field"] == "who" and manifest["config"]["seed"] == 11
    assert manifest["counts"]["reviews_read"] == 40
    assert manifest["counts"]["records"] == 40 - manifest["counts"]["dropped_no_explanation"]
    assert "paper" not in result.stderr.split("Users")[0]  # no paper column for a raw dataset


def test_config_problems(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("sead: 5\n")
    assert_one_error(invoke(SAMPLE, "--config", config), 2, "unknown key 'sead'", "valid keys")
    config.write_text("seed: many\nname: x\n")
    assert_one_error(invoke(SAMPLE, "--config", config), 2, "--seed", str(config))
    config.write_text("- a list\n")
    assert_one_error(invoke(SAMPLE, "--config", config), 2, "expected a mapping")
    assert_one_error(invoke(SAMPLE, "--config", tmp_path / "absent.yaml"), 2, "no such file")


def test_help_documents_every_option():
    result = runner.invoke(app, ["prepare", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    for option in [
        "--source",
        "--name",
        "--out",
        "--overwrite",
        "--seed",
        "--user-field",
        "--item-field",
        "--rating-field",
        "--text-field",
        "--max-explanation-tokens",
        "--config",
        "--json",
    ]:
        line = next(line for line in result.stdout.splitlines() if option in line)
        assert len(line.split(option, 1)[1].strip(" │")) > 10, line  # some help text follows the flag
    import click

    command = typer.main.get_command(app).commands["prepare"]  # type: ignore[attr-defined]
    assert all(param.help for param in command.params if isinstance(param, click.Option))


def test_importing_the_command_is_light():
    code = (
        "import sys, pepler_cli.cli.prepare\n"
        "names = ('torch', 'transformers', 'tokenizers', 'pydantic', 'yaml')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_export_data_writes_the_nete_layout_once(tmp_path, nete):
    from pepler_cli.cli.app import app as pepler

    data, out = tmp_path / "data", tmp_path / "exported"
    assert invoke("tripadvisor", "--source", nete, "--out", data).exit_code == 0
    result = runner.invoke(pepler, ["export-data", str(data), "--format", "nete", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    expected = [f"{k}/{part}.index" for k in range(1, 6) for part in ("test", "train", "validation")]
    assert files_in(out) == sorted([*expected, "reviews.pickle"])
    again = runner.invoke(pepler, ["export-data", str(data), "--out", str(out)])
    assert_one_error(again, 1, "already exists", "--overwrite")
