"""`pepler report`: one self-contained HTML page, checked for content and rendered in a real headless browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from pepler_cli.cli.app import app

runner = CliRunner()
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def scored_runs(nete_tiny_data, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("report")
    runs = []
    for split in (1, 2):
        run = root / f"pepler-s{split}"
        invoke("train", "--data", nete_tiny_data, "--out", run, "--backbone", "gpt2-tiny", "--epochs", "1",
               "--batch-size", "16", "--split", split, "--logger", "none")  # fmt: skip
        preds = root / f"preds-{split}.jsonl"
        invoke("generate", run, "--out", preds, "--limit", "6", "--device", "cpu")
        invoke("score", preds, "--data", nete_tiny_data)
        runs.append(run)
    return runs


@pytest.fixture(scope="module")
def report(scored_runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "report.html"
    output = invoke("report", *scored_runs, "--out", out, "--group-by", "split", "--samples", "3")
    assert "2 rows, 3 figures" in output
    return out


def test_the_page_holds_the_table_figures_statistics_and_samples(report):
    page = report.read_text(encoding="utf-8")
    assert "<h2>Comparison</h2>" in page and "<td>pepler</td><td>2</td>" in page  # one group of 2 splits
    assert "mean ± sample standard deviation over split" in page
    assert (
        page.count("<svg") == 3
        and "pepler-s1: training curves" in page
        and "BLEU-1 ↑, mean over split" in page
    )
    assert "<h2>Dataset</h2>" in page and "records/user" in page
    assert page.count("<h3>") == 2 and len(re.findall(r"<tr><td>[^<]+</td><td>[^<]+</td>", page)) >= 6
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page) and "<script" not in page


SAMPLE_ROW = re.compile(
    r"<tr><td>(?P<user>[^<]*)</td><td>(?P<item>[^<]*)</td><td>(?P<feature>[^<]*)</td>"
    r"<td>(?P<reference>.*?)</td><td>(?P<generated>.*?)</td></tr>"
)


def assert_highlighted(cell: str, text: str, feature: str) -> int:
    """``cell`` is ``text`` (escaped) with every occurrence of ``feature`` in a <mark>; returns how many."""
    assert re.sub(r"</?mark>", "", cell) == html.escape(text), (cell, text)
    marked = re.findall(r"<mark>(.*?)</mark>", cell)
    assert [m.lower() for m in marked] == [html.escape(feature).lower()] * len(marked), (cell, feature)
    assert len(marked) == html.escape(text).lower().count(html.escape(feature).lower()), (cell, feature)
    return len(marked)


def test_samples_show_the_first_predictions_with_the_feature_highlighted(report, scored_runs):
    page = report.read_text(encoding="utf-8")
    samples = page[page.index("<h2>Explanations</h2>") :]
    tables = re.split(r"<h3>", samples)[1:]
    assert len(tables) == len(scored_runs) == 2
    marked_references = 0
    for split, table in enumerate(tables, start=1):
        assert table.startswith(f"pepler-s{split} ("), table[:80]
        # --samples 3: the first three predictions of the run's scored predictions file, in order.
        preds = scored_runs[split - 1].parent / f"preds-{split}.jsonl"
        expected = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()][:3]
        rows = [found.groupdict() for found in SAMPLE_ROW.finditer(table)]
        assert [(r["user"], r["item"], r["feature"]) for r in rows] == [
            (html.escape(p["user"]), html.escape(p["item"]), html.escape(p["feature"])) for p in expected
        ]
        for row, prediction in zip(rows, expected):
            # nete-tiny's explanations read "the featureN was ...": each reference names its own feature.
            assert prediction["feature"].lower() in prediction["reference"].lower(), prediction
            marks = assert_highlighted(row["reference"], prediction["reference"], prediction["feature"])
            assert f"<mark>{html.escape(prediction['feature'])}</mark>" in row["reference"], row
            marked_references += marks
            assert_highlighted(row["generated"], prediction["generated"], prediction["feature"])
    assert marked_references >= 6


def _browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def test_the_page_renders_in_a_headless_browser_without_console_errors(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (apt-get install chromium; .ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert "<table>" in dom.stdout and dom.stdout.count("<svg") == 3 and "training curves" in dom.stdout
    shot = tmp_path / "report.png"
    taken = subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = Image.open(shot)
    image.load()
    assert image.size == (1200, 2000)
    assert (
        len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 10
    )  # text and figures, not a blank page
