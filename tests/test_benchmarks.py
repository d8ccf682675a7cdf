"""The benchmark suite's baselines and bookkeeping (benchmarks/), checked without timing anything.

The benchmarks assert their equalities when they run; these tests keep the baselines honest in CI: the
paper-side re-implementations must compute what pepler computes, the FLOP count must follow its formula, and
the summary must report what the result files say.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pepler_cli.cli.app import app
from pepler_cli.evaluation.metrics import explainability

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
FIXTURE = Path(__file__).parent / "fixtures" / "nete-tiny"


def bench(name: str):
    """A benchmark module, imported the way its script runs (benchmarks/ on the path, for benchlib)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture
def prepared(tmp_path, monkeypatch) -> Path:
    """The tiny NETE fixture, prepared, standing in for the bundled Amazon data the benchmarks prepare."""
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["prepare", "tripadvisor", "--source", str(FIXTURE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(bench("benchlib"), "prepared_amazon", lambda: out)
    return out


# ---- scoring: the authors' loops against pepler's metrics ------------------------------------------------


def random_corpus(seed: int, size: int) -> tuple[list[list[str]], list[frozenset[str]], set[str], list[str]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(12)]
    features = set(words[:6])
    sentences = [[rng.choice(words) for _ in range(rng.randint(1, 5))] for _ in range(size)]
    sentences += [list(s) for s in rng.sample(sentences, size // 3)]  # repeats, as generated text has
    rng.shuffle(sentences)
    mentioned = [explainability.features_in(s, features) for s in sentences]
    truth = [rng.choice(sorted(features)) for _ in sentences]
    return sentences, mentioned, features, truth


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_papers_loops_compute_peplers_metrics(seed):
    scoring = bench("bench_scoring")
    sentences, mentioned, features, truth = random_corpus(seed, 60)
    found = scoring.paper_feature_detect(sentences, features)
    assert found == [set(m) for m in mentioned]
    usr, usn = scoring.paper_unique_sentence_percent(sentences)
    assert usn == explainability.unique_sentence_count(sentences)
    assert usr == explainability.unique_sentence_ratio(sentences)
    assert scoring.paper_feature_diversity(found) == explainability.feature_diversity(mentioned)
    assert scoring.paper_feature_matching_ratio(found, truth) == explainability.feature_matching_ratio(
        mentioned, truth
    )
    assert scoring.paper_feature_coverage_ratio(found, features) == explainability.feature_coverage_ratio(
        mentioned, features
    )


def test_paper_diversity_counts_shared_features_over_pairs():
    scoring = bench("bench_scoring")
    # Pairs: ({a,b},{b}) share 1, ({a,b},{a,b}) share 2, ({b},{a,b}) share 1 -> 4 over 3 pairs.
    assert scoring.paper_feature_diversity([{"a", "b"}, {"b"}, {"a", "b"}]) == pytest.approx(4 / 3)


# ---- scoring beyond the paper: the synthetic inputs, the end-to-end case, the result file -----------------

SMALL_SHAPE = {
    "records": 2_000,
    "users": 100,
    "items": 50,
    "features": 90,
    "pairs": 1_000,
    "item_features": 6,
}


def test_the_synthetic_inputs_have_the_shape_asked_for(tmp_path):
    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.evaluation.metrics.tokens import normalize

    scoring = bench("bench_scoring")
    shape = scoring.Shape(**SMALL_SHAPE)
    records, features, filler = scoring.synthetic_dataset(tmp_path / "data", shape)
    dataset = load_prepared(tmp_path / "data")
    assert len(dataset.records) == 2_000 and sorted(dataset.features) == sorted(features)
    assert (
        len({r.user for r in records}) == 100 and len({r.item for r in records}) == 50
    )  # each at least once
    phrases = [f for f in features if " " in f]
    assert len(features) == 90 and len(phrases) == 30  # a third are two words long
    assert all(f.split()[1] in features for f in phrases)  # "patch cable" beside "cable"
    assert all(len(normalize(r.text)) == 20 and r.feature in r.text for r in records)
    train, validation, test = dataset.splits[1]
    assert (len(train), len(validation), len(test)) == (1_600, 200, 200)

    predictions = scoring.synthetic_predictions(records, features, filler, shape)
    assert len(predictions) == 1_000
    assert len({p.generated for p in predictions}) == 300  # 30% unique
    assert all(len(normalize(p.generated)) == 20 for p in predictions)
    assert all((p.user, p.item, p.reference, p.feature) in {(r.user, r.item, r.text, r.feature) for r in records}
               for p in predictions[:50])  # fmt: skip


def test_the_beyond_case_runs_the_cli_and_updates_only_its_case(tmp_path, monkeypatch):
    scoring = bench("bench_scoring")
    benchlib = bench("benchlib")
    monkeypatch.setattr(benchlib, "WORK", tmp_path / "work")
    shape = scoring.Shape(records=600, users=30, items=20, features=30, pairs=300, item_features=4)
    case = scoring.beyond_case(shape, reps=1, quick=True)
    assert case["name"] == scoring.BEYOND_CASE and case["met"] is None  # a quick run judges no target
    assert case["target"] == 10.0 and case["target_text"] == "< 10 s" and case["absolute"] is True
    assert len(case["cli_seconds"]) == len(case["paper_only_seconds"]) == 1 and case["pepler"] > 0
    assert 0 < case["cli_cpu_seconds"][0] and 0 < case["paper_only_cpu_seconds"][0]
    assert case["inputs"]["usr"] == 0.3 and case["inputs"]["tokens_per_generated"] == 20.0
    assert {"ifmr", "fmr_phrase", "distinct_2", "gini"} <= set(case["scores"])
    assert case["command"].startswith("pepler score PREDS --data DIR --out OUT --metrics grounding,phrase")

    # --only beyond: the committed cases stay as they are; a second run replaces its case, once.
    committed = json.loads((BENCH / "results" / "scoring.json").read_text(encoding="utf-8"))
    (tmp_path / "scoring.json").write_text(json.dumps({**committed, "quick": True}), encoding="utf-8")
    for _ in range(2):
        scoring.write_beyond_only(tmp_path, case, quick=True)
    written = json.loads((tmp_path / "scoring.json").read_text(encoding="utf-8"))
    old = [c for c in committed["cases"] if c["name"] != scoring.BEYOND_CASE]
    assert written["cases"] == [*old, json.loads(json.dumps(case))]
    assert {k: v for k, v in written.items() if k != "cases"} == {
        **{k: v for k, v in committed.items() if k != "cases"},
        "quick": True,
    }
    assert f"| {scoring.BEYOND_CASE} |" in bench("report").markdown(bench("report").load(tmp_path))


# ---- decoding: the paper's full-prefix greedy against pepler's cached decoding ---------------------------


def test_papers_decoding_gives_peplers_tokens():
    decoding = bench("bench_decoding")
    model, _ = decoding.build_model("tiny")
    inputs = decoding.pairs(12)
    pepler = decoding.pepler_decode(model, inputs, 5)  # batches of 5: a short last batch too
    paper = [decoding.cut_at_eos(row, decoding.EOS) for row in decoding.paper_decode(model, inputs, 5)]
    assert len(pepler) == 12
    assert paper == pepler


# ---- training: the paper's padded, logits-everywhere step against pepler's --------------------------------


def test_papers_training_step_has_peplers_loss_and_gradients(prepared):
    training = bench("bench_training")
    s = training.setup(None)
    for stage in (training.FULL_STAGE, training.PROMPT_STAGE):
        equality = training.check_same_loss(s, stage)  # asserts inside; the figures must say so too
        assert equality["relative_loss_difference"] <= 1e-5
        assert equality["largest_relative_gradient_difference"] <= 1e-4


def test_an_epoch_of_each_side_sees_the_same_batches(prepared):
    training = bench("bench_training")
    s = training.setup(None)
    stage = training.FULL_STAGE
    s.model.load_state_dict(s.initial)
    # Learning rate 0: the weights stay put, so the two epochs' mean losses must agree batch for batch.
    # Both sides put the model in training mode; dropout's draws would differ, so its rate is set to zero.
    for module in s.model.modules():
        if hasattr(module, "p") and isinstance(module.p, float):
            module.p = 0.0
    paper = training.paper_epoch(s, torch.optim.SGD(training.set_trainable(s.model, stage), lr=0.0))
    pepler = training.pepler_epoch(s, stage, torch.optim.SGD(training.set_trainable(s.model, stage), lr=0.0))
    assert pepler == pytest.approx(paper, rel=1e-5)


# ---- CUDA: the FLOP count and the peak table, and the code path on CPU -----------------------------------


def test_flops_follow_the_documented_formula():
    cuda = bench("bench_cuda")
    # One example of 5 tokens (<bos>, 3 words, <eos>): L = 7 positions, T = 4 labels.
    flops = cuda.epoch_model_flops([5], n_layer=2, width=8, vocabulary=10, block_parameters=100)
    assert flops == 6 * 100 * 7 + 12 * 2 * 8 * 7**2 + 6 * 10 * 8 * 4
    assert cuda.epoch_model_flops([5, 5], 2, 8, 10, 100) == 2 * flops


@pytest.mark.parametrize(
    ("device", "matched"),
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("Some Future GPU", None),
    ],
)
def test_gpu_names_find_their_own_peak(device, matched):
    found = bench("bench_cuda").peak_flops(device)
    assert (found[0] if found else None) == matched


def test_the_cuda_benchmark_runs_its_step_on_cpu_when_forced(prepared):
    measured = bench("bench_cuda").run("cpu (forced)", quick=True, force_cpu=True)
    assert measured["tokens_per_second"] > 0
    assert measured["model_flops_per_epoch"] > 0
    assert measured["mfu"] is None  # no peak is known for a CPU
    assert measured["bf16_autocast"] is False


def test_without_cuda_the_benchmark_records_a_skip(tmp_path, monkeypatch):
    cuda = bench("bench_cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # so that it runs on a GPU machine too
    assert cuda.main(["--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cuda.json").read_text(encoding="utf-8"))
    assert result["skipped"] == "no CUDA"


# ---- the suite's record and summary ----------------------------------------------------------------------


def test_a_partial_run_updates_the_previous_suite_record(tmp_path):
    run = bench("run")
    path = tmp_path / "suite.json"
    previous = {
        "quick": False,
        "started": "earlier",
        "load_average_at_start": [0.1, 0.1, 0.1],
        "benchmarks": {
            "scoring": {"returncode": 0, "seconds": 10.0},
            "decoding": {"returncode": 0, "seconds": 50.0},
        },
        "total_seconds": 60.0,
    }
    path.write_text(json.dumps(previous), encoding="utf-8")
    partial = {
        "quick": False,
        "started": "later",
        "load_average_at_start": [0.2, 0.2, 0.2],
        "benchmarks": {"decoding": {"returncode": 0, "seconds": 70.0}},
    }
    merged = run.merged_with_previous(path, partial)
    assert merged["benchmarks"] == {
        "scoring": {"returncode": 0, "seconds": 10.0},
        "decoding": {"returncode": 0, "seconds": 70.0},
    }
    assert merged["total_seconds"] == 80.0
    assert merged["rerun"][-1]["benchmarks"] == ["decoding"]
    # A quick partial run never merges into a full record.
    assert run.merged_with_previous(path, {**partial, "quick": True}) == {**partial, "quick": True}


def test_the_summary_reports_each_case_and_flags_a_missed_target(tmp_path):
    report = bench("report")
    committed = BENCH / "results"
    for path in committed.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    scoring = json.loads((tmp_path / "scoring.json").read_text(encoding="utf-8"))
    scoring["cases"][0]["met"] = False  # pretend a target was missed
    (tmp_path / "scoring.json").write_text(json.dumps(scoring), encoding="utf-8")
    found = report.load(tmp_path)
    text = report.markdown(found)
    for name in found:
        for case in found[name].get("cases", []):
            assert f"| {case['name']} |" in text
    missed = next(line for line in text.splitlines() if line.startswith(f"| {scoring['cases'][0]['name']} |"))
    assert missed.endswith("| **no** |")
    assert found["scoring"]["machine"]["cpu"] in text
