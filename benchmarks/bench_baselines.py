"""The paper's baselines, one training epoch: the authors' code against ``pepler train --model``, on CPU.

    python benchmarks/bench_baselines.py --authors-code DIR [--train-examples N] [--repeats N]
                                         [--models nrt,att2seq,peter,peter+] [--authors-vocabulary matched|own]
                                         [--pepler-args="--precision bf16"]

DIR holds the authors' repositories as cloned (the commits ``AUTHORS`` names; $PEPLER_AUTHORS_CODE, else /tmp/h5):

    git clone https://github.com/lileipisces/NRT && git -C NRT checkout d457fc8b5f528d5ddf6407df0b1201bec2909c16
    git clone https://github.com/lileipisces/Att2Seq && git -C Att2Seq checkout acd6f9670b3da3acf498fd600a6eec9164303b04
    git clone https://github.com/lileipisces/PETER && git -C PETER checkout 1f1d7f616fcce69c90b5cc15ad87d815acc6a753

The ``torch.load(f, weights_only=False)`` patch their main.py needs on torch >= 2.6 may be there or not: the part of
main.py that loads the checkpoint is never run here. The results record each file's git blob id and whether
module.py, utils.py and main.py (with that patch undone) are the commit's.

Data: split 1 of the bundled Amazon dataset (``benchlib.prepared_amazon()``, or ``--data``). With
``--train-examples N`` both sides train on the same seeded N of the training part: the numbers are the ones
``pepler train --max-train-examples N`` chooses (pepler's own ``_training_parts``, seed 1111), and the authors read
a NETE export (``pepler export-data --format nete``) whose ``1/train.index`` is rewritten to hold exactly those
record numbers, in that order. Without it, the whole training part. Both validate on the whole validation part.

The two sides, each run in a fresh process (``benchlib.measure_command``: its peak resident set size, ru_maxrss of
that process alone, and its CPU seconds):

- the authors: their main.py, with their defaults (batch 200 / 50 / 128, optimizer, clipping, loss weights),
  ``--epochs 1``, CPU (no --cuda), ``--peter_mask`` for PETER, ``--use_feature`` for PETER+. A small driver
  (``authors_worker`` below) executes main.py's own source in two pieces: everything before its epoch loop
  (arguments, DataLoader, Batchify, model, optimizer, the train/evaluate/generate definitions), untimed; then the
  epoch loop itself, unchanged, ending where main.py reloads the best model for the test set (the test
  evaluation, greedy generation and the pure-Python metrics are not run: they are not part of an epoch). The
  driver only rebinds the names ``train`` and ``evaluate`` to timing wrappers of their functions, so their
  epoch's seconds = ``train(train_data)`` + ``evaluate(val_data)``. The loop's own extra work (its prints and
  ``torch.save`` of the whole model, since epoch 1 always improves) is reported beside it as ``loop_seconds``.
- pepler: ``pepler train --model X --epochs 1 --logger none --device cpu`` (``--feature-hint given`` for
  PETER+), ``--max-train-examples N`` when a subset is asked for; its epoch's seconds are the run manifest's
  ``stages[0].epochs[0].seconds`` (the training batches and the validation; not the checkpoint written after it).
  ``--pepler-args`` adds flags (e.g. ``--precision bf16``, ``--bucket-by-length``), recorded in the results; the
  default adds none, so pepler keeps the authors' arithmetic (fp32) and batch composition.

Vocabulary: pepler counts the words of the texts it trains on (a deliberate difference: the authors count every
record's, test texts included), so on a subset its vocabulary is much smaller than theirs, and the output layer,
most of these models' work, with it. ``--authors-vocabulary matched`` (default) therefore passes the authors'
own ``--vocab_size`` flag the size of pepler's vocabulary: their DataLoader keeps its most frequent words, and
both networks have the same number of output words (checked: their ``ntoken`` equals pepler's). ``own`` keeps
their default 20,000 (their vocabulary is every word of the whole dataset; ratios then mix the two choices).

Each model is run ``--repeats`` times a side, the two sides alternating and the side that starts changing with
each repetition (authors, pepler; pepler, authors; ...). Reported: medians, every raw timing, the ratio of the
medians (authors / pepler) and the goal (>= 2x per model). Writes results/baselines-speed.json (after each model,
so a stopped run keeps what it measured).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bl
from authors_code import AUTHORS

TARGET = 2.0
SPLIT = 1
SEED = 1111  # pepler train's default seed: it picks the --max-train-examples subset
RESULTS_NAME = "baselines-speed"
DEFAULT_AUTHORS_CODE = Path(os.environ.get("PEPLER_AUTHORS_CODE", "/tmp/h5"))
# Where main.py's epoch loop starts, and where the part after training (reload, test, generation, metrics) starts.
LOOP_START = "# Loop over epochs."
LOOP_END = "# Load the best saved model."
LOAD_PATCH = ("torch.load(f, weights_only=False)", "torch.load(f)")

# Per benchmarked model: the authors' repository and the flags their main.py gets beyond the data and --epochs;
# pepler's --model and its flags; the authors' training batch size (main.py default), for the size-1 batch check.
MODELS: dict[str, dict[str, Any]] = {
    "nrt": {"repo": "NRT", "authors_flags": [], "pepler": ["--model", "nrt"], "batch": 200},
    "att2seq": {"repo": "Att2Seq", "authors_flags": [], "pepler": ["--model", "att2seq"], "batch": 50},
    "peter": {
        "repo": "PETER",
        "authors_flags": ["--peter_mask"],
        "pepler": ["--model", "peter"],
        "batch": 128,
    },
    "peter+": {
        "repo": "PETER",
        "authors_flags": ["--peter_mask", "--use_feature"],
        "pepler": ["--model", "peter", "--feature-hint", "given"],
        "batch": 128,
    },
}


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# ---- the authors' side: a driver around their main.py ---------------------------------------------------


def authors_worker(argv: list[str]) -> int:
    """Run one authors' epoch (their main.py up to the test part) and print its timings as the last line."""
    p = argparse.ArgumentParser()
    p.add_argument("--authors-worker", required=True)
    p.add_argument("--repo-dir", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    args, main_args = p.parse_known_args(argv)  # the rest: main.py's own flags
    repo = args.repo_dir.resolve()
    main_path = repo / "main.py"
    source = main_path.read_text(encoding="utf-8")
    start, end = source.find(LOOP_START), source.find(LOOP_END)
    if start < 0 or end < start:
        raise SystemExit(f"{main_path}: cannot find its epoch loop ({LOOP_START!r} … {LOOP_END!r})")
    prelude = compile(source[:start], str(main_path), "exec")
    # The loop keeps its line numbers in tracebacks.
    loop = compile("\n" * source[:start].count("\n") + source[start:end], str(main_path), "exec")

    sys.path.insert(0, str(repo))  # `from module import …`, `from utils import …` as when run from its folder
    sys.argv = [str(main_path), *main_args, "--checkpoint", str(args.checkpoint)]
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(main_path)}
    started = time.perf_counter()
    exec(prelude, namespace)  # noqa: S102 - the authors' own script, as `python main.py` would run it
    setup_seconds = time.perf_counter() - started
    rss_after_setup = bl.peak_rss_mib_self()

    timings: dict[str, list[float]] = {"train": [], "evaluate": []}
    returned: dict[str, Any] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            value = function(*a, **k)
            timings[name].append(time.perf_counter() - t0)
            returned[name] = value
            return value

        return wrapper

    namespace["train"] = timed("train", namespace["train"])
    namespace["evaluate"] = timed("evaluate", namespace["evaluate"])
    started = time.perf_counter()
    exec(loop, namespace)  # noqa: S102
    loop_seconds = time.perf_counter() - started
    if len(timings["train"]) != 1 or len(timings["evaluate"]) != 1:
        raise SystemExit(f"expected one train() and one evaluate() call, got {timings}")

    import torch

    corpus = namespace["corpus"]
    train_seconds, valid_seconds = timings["train"][0], timings["evaluate"][0]
    print(
        json.dumps(
            {
                "epoch_seconds": train_seconds + valid_seconds,
                "train_seconds": train_seconds,
                "validation_seconds": valid_seconds,
                "loop_seconds": loop_seconds,
                "setup_seconds": setup_seconds,
                "rss_after_setup_mib": rss_after_setup,
                "train_examples": len(corpus.train),
                "validation_examples": len(corpus.valid),
                "ntoken": len(corpus.word_dict),
                "nuser": len(corpus.user_dict),
                "nitem": len(corpus.item_dict),
                "batch_size": namespace["args"].batch_size,
                "train_batches": namespace["train_data"].total_step,
                "parameters": sum(p.numel() for p in namespace["model"].parameters()),
                "torch_threads": torch.get_num_threads(),
                "train_returned": _plain(returned.get("train")),
                "validation_losses": _plain(returned.get("evaluate")),
            }
        ),
        flush=True,
    )
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [round(float(v), 6) for v in value]
    return None if value is None else round(float(value), 6)


# ---- the parent: data, both sides, results -------------------------------------------------------------


def check_authors_code(root: Path, repos: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for repo in sorted(repos):
        folder = root / repo
        if not (folder / "main.py").is_file():
            raise SystemExit(f"{folder}: no main.py; see --help for getting the authors' code")
        blobs, same = {}, {}
        for name, expected in AUTHORS[repo]["blobs"].items():
            data = (folder / name).read_bytes()
            blobs[name] = git_blob(data)
            if name == "main.py":
                data = data.replace(LOAD_PATCH[0].encode(), LOAD_PATCH[1].encode())
            same[name] = git_blob(data) == expected
        text = (folder / "main.py").read_text(encoding="utf-8")
        if text.find(LOOP_START) < 0 or text.find(LOOP_END) < text.find(LOOP_START):
            raise SystemExit(f"{folder / 'main.py'}: cannot find its epoch loop")
        found[repo] = {
            **{k: AUTHORS[repo][k] for k in ("url", "commit")},
            "blobs": blobs,
            "same_as_commit": same,
            "main_py_load_patched": LOAD_PATCH[0] in text,
        }
        if not all(same.values()):
            bl.say(f"warning: {folder} differs from {AUTHORS[repo]['commit'][:7]}: {same}")
    return found


def chosen_training_numbers(data: Path, train_examples: int | None) -> tuple[list[int], list[int], Any]:
    """The record numbers ``pepler train --split 1 [--max-train-examples N]`` trains on (pepler's own choice)."""
    from types import SimpleNamespace

    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.training.train import _training_parts

    dataset = load_prepared(data)
    config = SimpleNamespace(split=SPLIT, max_train_examples=train_examples, seed=SEED)
    train, valid = _training_parts(config, dataset)  # type: ignore[arg-type]
    return list(train), list(valid), dataset


def pepler_vocabulary_sizes(dataset: Any, numbers: list[int], models: list[str]) -> dict[str, int]:
    """The size of the vocabulary pepler's plugin counts on those records, per model (PETER counts features)."""
    from pepler_baselines.vocabulary import WordVocabulary

    chosen = [dataset.records[n] for n in numbers]
    texts = [r.text for r in chosen]
    sizes = {}
    for model in models:
        features = [r.feature for r in chosen] if MODELS[model]["repo"] == "PETER" else None
        sizes[model] = len(WordVocabulary.count(texts, 20000, features))
    return sizes


def export_nete(data: Path, out: Path, train_numbers: list[int], whole: bool) -> dict[str, Any]:
    """``pepler export-data --format nete``, then split 1's train.index rewritten to pepler's training numbers."""
    command = [*bl.pepler_command(), "export-data", str(data), "--format", "nete", "--out", str(out)]
    subprocess.run(command, check=True, cwd=bl.REPO, stdout=subprocess.DEVNULL)
    index = out / str(SPLIT) / "train.index"
    exported = [int(x) for x in index.read_text().split()]
    if whole and exported != train_numbers:
        raise SystemExit(f"{index}: the export's training part is not the one pepler trains on")
    index.write_text(" ".join(map(str, train_numbers)) + "\n")
    return {"command": shown_command([*command[:-1], "<nete>"]), "train_index_rewritten": not whole}


def shown_command(argv: list[str]) -> str:
    """A command as the results file shows it: `pepler …` and repository-relative paths."""
    prefix = bl.pepler_command()
    words = ["pepler", *argv[len(prefix) :]] if argv[: len(prefix)] == prefix else list(argv)
    out = []
    for word in words:
        if word == sys.executable:
            out.append("python")
        elif os.sep in word and Path(word).exists():
            out.append(bl.shown(Path(word)))
        else:
            out.append(word)
    return " ".join(out)


def run_authors(
    model: str, code: Path, nete: Path, vocab_size: int, scratch: Path
) -> tuple[dict[str, Any], list[str]]:
    spec = MODELS[model]
    checkpoint = Path(tempfile.mkdtemp(prefix="authors-", dir=scratch))
    main_args = [
        "--data_path",
        str(nete / "reviews.pickle"),
        "--index_dir",
        str(nete / str(SPLIT)),
        "--epochs",
        "1",
        "--vocab_size",
        str(vocab_size),
        *spec["authors_flags"],
    ]
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--authors-worker",
        model,
        "--repo-dir",
        str(code / spec["repo"]),
        "--checkpoint",
        str(checkpoint),
        *main_args,
    ]
    try:
        measured = bl.measure_command(argv)
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
    report = json.loads(measured["stdout"].strip().splitlines()[-1])
    report.update(
        wall_seconds=round(measured["seconds"], 2),
        cpu_seconds=round(measured["cpu_seconds"], 2),
        peak_rss_mib=measured["peak_rss_mib"],
    )
    shown_args = ["<nete>/reviews.pickle" if a.endswith("reviews.pickle") else a for a in main_args]
    shown_args = [f"<nete>/{SPLIT}" if a == str(nete / str(SPLIT)) else a for a in shown_args]
    shown = (
        f"python {spec['repo']}/main.py {' '.join(shown_args)} --checkpoint <temporary> (up to {LOOP_END!r})"
    )
    return report, [shown]


def run_pepler(
    model: str, data: Path, train_examples: int | None, scratch: Path, extra: list[str]
) -> tuple[dict[str, Any], list[str]]:
    import yaml

    out = Path(tempfile.mkdtemp(prefix="pepler-", dir=scratch)) / "run"
    argv = [
        *bl.pepler_command(),
        "train",
        "--data",
        str(data),
        "--split",
        str(SPLIT),
        *MODELS[model]["pepler"],
        "--epochs",
        "1",
        "--logger",
        "none",
        "--device",
        "cpu",
        *(["--max-train-examples", str(train_examples)] if train_examples is not None else []),
        *extra,
        "--out",
        str(out),
    ]
    try:
        measured = bl.measure_command(argv)
        manifest = yaml.safe_load((out / "manifest.yaml").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    epoch = manifest["stages"][0]["epochs"][0]
    report = {
        "epoch_seconds": float(epoch["seconds"]),
        "training_seconds": manifest.get("training_seconds"),
        "train_examples": manifest["dataset"]["train_examples"],
        "validation_examples": manifest["dataset"]["validation_examples"],
        "ntoken": manifest["model"]["vocabulary"],
        "nuser": manifest["model"].get("users"),
        "nitem": manifest["model"].get("items"),
        "batch_size": manifest["config"]["batch_size"],
        "precision": (manifest.get("device") or {}).get("precision"),
        "parameters": manifest["model"].get("parameters"),
        "train_loss": epoch.get("train_loss"),
        "valid_loss": epoch.get("valid_loss"),
        "wall_seconds": round(measured["seconds"], 2),
        "cpu_seconds": round(measured["cpu_seconds"], 2),
        "peak_rss_mib": measured["peak_rss_mib"],
    }
    shown = shown_command([*argv[:-1], "<temporary>"])
    return report, [shown]


def summarize(model: str, runs: dict[str, list[dict[str, Any]]], whole: bool) -> dict[str, Any]:
    authors = [r["epoch_seconds"] for r in runs["authors"]]
    pepler = [r["epoch_seconds"] for r in runs["pepler"]]
    a_med, p_med = bl.median(authors), bl.median(pepler)
    ratio = a_med / p_med if p_med > 0 else float("inf")
    first_a, first_p = runs["authors"][0], runs["pepler"][0]
    return bl.case(
        f"baseline {model}, one epoch",
        measure=f"seconds of one training epoch and its validation on CPU ({first_p['train_examples']:,} training, "
        f"{first_p['validation_examples']:,} validation examples of split {SPLIT}); authors' main.py vs pepler train",
        unit="s",
        pepler=round(p_med, 3),
        paper=round(a_med, 3),
        speedup=ratio,
        target=TARGET,
        target_text=f">= {TARGET:g}x",
        met=ratio >= TARGET,
        whole_training_part=whole,
        authors_epoch_seconds=[round(x, 3) for x in authors],
        pepler_epoch_seconds=[round(x, 3) for x in pepler],
        authors_median_train_seconds=round(bl.median([r["train_seconds"] for r in runs["authors"]]), 3),
        authors_median_validation_seconds=round(
            bl.median([r["validation_seconds"] for r in runs["authors"]]), 3
        ),
        authors_median_loop_seconds=round(bl.median([r["loop_seconds"] for r in runs["authors"]]), 3),
        authors_peak_rss_mib=bl.median([r["peak_rss_mib"] for r in runs["authors"]]),
        pepler_peak_rss_mib=bl.median([r["peak_rss_mib"] for r in runs["pepler"]]),
        authors_wall_seconds=[r["wall_seconds"] for r in runs["authors"]],
        pepler_wall_seconds=[r["wall_seconds"] for r in runs["pepler"]],
        same_sizes={
            k: [first_a.get(k), first_p.get(k)]
            for k in (
                "train_examples",
                "validation_examples",
                "ntoken",
                "nuser",
                "nitem",
                "batch_size",
                "parameters",
            )
        },
        runs=runs,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--authors-worker" in argv:
        return authors_worker(argv)
    p = bl.parser(__doc__)
    p.add_argument(
        "--authors-code",
        type=Path,
        default=DEFAULT_AUTHORS_CODE,
        help="folder holding NRT/, Att2Seq/, PETER/",
    )
    p.add_argument(
        "--data", type=Path, default=None, help="prepared dataset (default: the bundled one, prepared once)"
    )
    p.add_argument(
        "--train-examples",
        type=int,
        default=None,
        help="a seeded subset of N training examples (default: all)",
    )
    p.add_argument("--repeats", type=int, default=3, help="runs per side and model (default 3)")
    p.add_argument(
        "--models", default="nrt,att2seq,peter,peter+", help="comma-separated: nrt, att2seq, peter, peter+"
    )
    p.add_argument(
        "--pepler-args",
        default="",
        help="extra flags for pepler train, e.g. '--precision bf16' or '--bucket-by-length' (recorded; "
        "default: none, the authors' arithmetic and batches)",
    )
    p.add_argument(
        "--authors-vocabulary",
        choices=("matched", "own"),
        default="matched",
        help="matched: the authors' --vocab_size set to pepler's vocabulary size (same output layer); "
        "own: their default 20000 (default: matched)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.train_examples = args.train_examples or 300
        args.repeats = 1
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        p.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    if args.repeats < 1:
        p.error("--repeats: at least 1")
    pepler_extra = shlex.split(args.pepler_args)
    out_dir = bl.results_dir(args)
    code = args.authors_code.resolve()
    authors_code = check_authors_code(code, {MODELS[m]["repo"] for m in models})

    data = (args.data or bl.prepared_amazon()).resolve()
    train_numbers, valid_numbers, dataset = chosen_training_numbers(data, args.train_examples)
    whole = args.train_examples is None or args.train_examples >= len(dataset.splits[SPLIT][0])
    # The authors' NRT crashes on a last batch of one example (its one-hot concatenation), in train and evaluate.
    if "nrt" in models:
        for part, size in (("training", len(train_numbers)), ("validation", len(valid_numbers))):
            if size % MODELS["nrt"]["batch"] == 1:
                p.error(f"{size} {part} examples leave the authors' NRT a last batch of 1, which crashes it")
    vocab = pepler_vocabulary_sizes(dataset, train_numbers, models)

    scratch = Path(tempfile.mkdtemp(prefix="bench-baselines-"))
    try:
        nete = scratch / "nete"
        export = export_nete(data, nete, train_numbers, whole)
        result: dict[str, Any] = {
            "benchmark": "baselines-speed",
            "quick": args.quick,
            "machine": bl.machine_info(),
            "environment": {
                k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
            },
            "niceness": os.nice(0),
            "method": "one training epoch + its validation, CPU, fresh process per run; authors: their main.py's own "
            "source run by a driver up to the test part, seconds = their train() + evaluate(val_data); pepler: "
            "`pepler train --epochs 1`, seconds = manifest stages[0].epochs[0].seconds; peak RSS = ru_maxrss of "
            "each run's process; sides alternate, the first side changes every repetition; medians",
            "data": {
                "dataset": bl.shown(data),
                "fingerprint": getattr(dataset, "fingerprint", None),
                "split": SPLIT,
                "train_examples": len(train_numbers),
                "validation_examples": len(valid_numbers),
                "subset": None
                if whole
                else f"sorted(random.Random({SEED}).sample(training part, {args.train_examples})), as "
                "pepler train --max-train-examples chooses it",
                "train_numbers_sha256": hashlib.sha256(
                    " ".join(map(str, train_numbers)).encode()
                ).hexdigest(),
                "nete_export": export,
            },
            "authors_code": authors_code,
            "authors_vocabulary": args.authors_vocabulary,
            "vocabulary_note": "pepler counts the training texts' words; the authors count every record's. matched: "
            "the authors' --vocab_size = pepler's vocabulary size - 4, so both output layers have the same size",
            "pepler_extra_args": pepler_extra,
            "repeats": args.repeats,
            "commands": {},
            "cases": [],
        }
        out_path = out_dir / f"{RESULTS_NAME}.json"
        for model in models:
            size = vocab[model] - 4 if args.authors_vocabulary == "matched" else 20000
            runs: dict[str, list[dict[str, Any]]] = {"authors": [], "pepler": []}
            for rep in range(args.repeats):
                order = ("authors", "pepler") if rep % 2 == 0 else ("pepler", "authors")
                for side in order:
                    load = [round(x, 2) for x in os.getloadavg()]
                    if side == "authors":
                        report, commands = run_authors(model, code, nete, size, scratch)
                    else:
                        report, commands = run_pepler(model, data, args.train_examples, scratch, pepler_extra)
                    report["repetition"] = rep + 1
                    report["load_average_before"] = load
                    runs[side].append(report)
                    result["commands"].setdefault(model, {})[side] = commands[0]
                    bl.say(
                        f"  {model} {side} rep {rep + 1}: epoch {report['epoch_seconds']:.2f} s, peak RSS "
                        f"{report['peak_rss_mib']:.0f} MiB, ntoken {report['ntoken']}, load {load[0]}"
                    )
            if (
                args.authors_vocabulary == "matched"
                and runs["authors"][0]["ntoken"] != runs["pepler"][0]["ntoken"]
            ):
                bl.say(
                    f"warning: {model}: vocabularies differ {runs['authors'][0]['ntoken']} / {runs['pepler'][0]['ntoken']}"
                )
            if runs["pepler"][0]["ntoken"] != vocab[model]:
                bl.say(
                    f"warning: {model}: pepler's vocabulary {runs['pepler'][0]['ntoken']}, expected {vocab[model]}"
                )
            outcome = summarize(model, runs, whole)
            result["cases"].append(outcome)
            result["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            print(
                f"{model}: authors {outcome['paper']:.2f} s, pepler {outcome['pepler']:.2f} s per epoch, "
                f"{outcome['speedup']:.2f}x (goal {TARGET:g}x: {'met' if outcome['met'] else 'not met'}); peak RSS "
                f"authors {outcome['authors_peak_rss_mib']:.0f} MiB, pepler {outcome['pepler_peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out_path}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
