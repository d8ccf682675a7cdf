"""Summary of the benchmark results: results/summary.md (a table) and results/chart.png (speed-ups vs targets).

    python benchmarks/report.py [--results benchmarks/results]

Reads every ``<name>.json`` the benchmarks wrote in that folder (and ``suite.json`` from run.py, for the total
time). The chart needs matplotlib (benchmarks/requirements.txt); without it only the markdown is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ORDER = ("decoding", "scoring", "training", "preparation", "cuda", "backbones", "meaning")


def load(results: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name in (*ORDER, "extraction_semeval", "suite"):
        path = results / f"{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "s":
        return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"
    if unit == "tokens/s":
        return f"{value:,.0f} tokens/s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return str(value)


def fmt_ratio(speedup: float | None) -> str:
    if speedup is None:
        return "–"
    return f"{speedup:,.0f}×" if speedup >= 100 else f"{speedup:.3g}×"


def fmt_met(met: bool | None, quick: bool) -> str:
    if quick:
        return "(quick run: not judged)"
    return {True: "yes", False: "**no**", None: "–"}[met]


def rows(found: dict[str, dict[str, Any]]) -> list[list[str]]:
    table = []
    for name in ORDER:
        if name not in found:
            continue
        quick = bool(found[name].get("quick"))
        for case in found[name].get("cases", []):
            if case.get("skipped"):
                table.append(
                    [case["name"], f"skipped: {case['skipped']}", "–", "–", "–", case["target_text"], "–"]
                )
                continue
            pepler = fmt_value(case["pepler"], case["unit"])
            if case["name"] == "CUDA bf16 training step":
                mfu = case.get("mfu")
                pepler += f", {case['achieved_tflops']} TFLOP/s" + ("" if mfu is None else f", MFU {mfu:.1%}")
            table.append(
                [
                    case["name"],
                    case["measure"],
                    pepler,
                    fmt_value(case["paper"], case["unit"]),
                    fmt_ratio(case["speedup"]),
                    case["target_text"],
                    fmt_met(case["met"], quick),
                ]
            )
    return table


def machine_line(found: dict[str, dict[str, Any]]) -> str:
    for name in ORDER:
        if name in found and "machine" in found[name]:
            m = found[name]["machine"]
            gpu = f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU"
            return (
                f"{m['cpu']}, {m['usable_cores']} cores, {m['memory_gib']} GiB RAM{gpu}; Python {m['python']}, "
                f"torch {m['torch']} ({m['torch_threads']} threads), transformers {m['transformers']}; "
                f"{m['date']}"
            )
    return "unknown"


def load_lines(found: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name in ORDER:
        machine = found.get(name, {}).get("machine")
        if machine and machine.get("load_average_at_start") is not None:
            lines.append(f"{name} {machine['load_average_at_start'][0]:.2f}")
    return lines


def notes(found: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    decoding = found.get("decoding")
    if decoding:
        for c in decoding["cases"]:
            out.append(
                f"Decoding, {c['model']}: {c['pairs']:,} pairs in batches of {c['batch_size']}, medians of "
                f"{len(c['pepler_seconds'])} repetitions (pepler) and {len(c['paper_seconds'])} (paper's method); "
                f"tokens identical on every pair; {c['rows_that_stopped_at_eos']} of {c['pairs']:,} rows stopped "
                "at <eos> before 20 tokens (random weights), so pepler's early stop barely helped."
            )
    scoring = found.get("scoring")
    if scoring:
        whole = next(c for c in scoring["cases"] if c["name"] == "scoring, whole evaluation")
        b = whole.get("paper_breakdown_seconds", {})
        out.append(
            f"Scoring: {scoring['inputs']['pairs']:,} pairs (USR {scoring['inputs']['usr']:.3f}); every score "
            f"identical (==). The paper-side evaluation spent {b.get('div_loop', 0):.1f} s in the DIV pair loop, "
            f"{b.get('usr_loop', 0):.1f} s in the USR list scan and {b.get('text', 0):.1f} s in BLEU/ROUGE, which "
            "both sides share; so the whole-evaluation ratio is capped by the shared text metrics."
        )
    training = found.get("training")
    if training:
        for c in training["cases"]:
            pm, qm = c["pepler_memory"], c["paper_memory"]
            out.append(
                f"{c['name'].capitalize()}: {c['examples']:,} examples, {c['target_tokens']:,} target tokens, "
                f"medians of {len(c['pepler_seconds'])}/{len(c['paper_seconds'])} epochs; mean sequence "
                f"{c['mean_sequence']} tokens, the paper pads all to {c['dataset_longest_sequence']}. Same-batch "
                f"loss {c['same_batch']['pepler_loss']:.6f} vs {c['same_batch']['paper_loss']:.6f}. Peak RSS over "
                f"{c['memory_steps']} batches: pepler {pm['peak_rss_mib']:,.0f} MiB ({pm['peak_rss_mib'] - pm['rss_after_setup_mib']:,.0f} "
                f"above setup), paper {qm['peak_rss_mib']:,.0f} MiB ({qm['peak_rss_mib'] - qm['rss_after_setup_mib']:,.0f} above setup)."
            )
    prep = found.get("preparation")
    if prep:
        d = prep["dataset"]
        out.append(
            f"Preparation: {d['records']:,} records, {d['users']:,} users, {d['items']:,} items, {d['features']:,} "
            f"features ({d['source_mib']:,} MiB of NETE input, {d['prepared_mib']:,} MiB written); "
            f"{prep['repetitions']} repetition(s)."
        )
    cuda = found.get("cuda")
    if cuda and cuda.get("skipped"):
        out.append(f"CUDA: skipped ({cuda['skipped']}).")
    elif cuda:
        out.append(
            f"CUDA: {cuda['device']}, {cuda['flops_formula']}; peak memory allocated "
            f"{cuda.get('peak_memory_allocated_mib')} MiB."
        )
    return out


def extraction_table(found: dict[str, dict[str, Any]]) -> list[str]:
    """Measured through `pepler prepare` (extraction_semeval.py): each domain's first half (tuned on), second
    half (held out) and whole file."""
    e = found.get("extraction_semeval")
    if not e:
        return []
    lines = [
        "",
        "## Feature extraction quality through `pepler prepare` (SemEval-2014 Task 4 aspect terms)",
        "",
        "| domain | part | sentences | coverage | precision | recall | F1 | meets targets (whole) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for domain in ("restaurants", "laptops"):
        if domain not in e:
            continue
        for part in ("first_half", "second_half", "whole"):
            d = e[domain][part]
            met = ("yes" if e[domain].get("meets_targets") else "no") if part == "whole" else ""
            lines.append(
                f"| {domain} | {part.replace('_', ' ')} | {d['sentences']:,} | {d['coverage']:.3f} | "
                f"{d['precision']:.3f} | {d['recall']:.3f} | {d['f1']:.3f} | {met} |"
            )
    return lines


def markdown(found: dict[str, dict[str, Any]]) -> str:
    suite = found.get("suite", {})
    header = [
        "benchmark",
        "what",
        "pepler",
        "baseline (the paper's method unless named)",
        "ratio",
        "target",
        "met",
    ]
    lines = ["# pepler benchmark results", ""]
    if suite.get("quick"):
        lines += ["**Quick smoke run**: small inputs, targets not judged.", ""]
    lines += [f"Machine: {machine_line(found)}.", ""]
    loads = load_lines(found)
    if loads:
        lines += [f"Load average (1 min) when each benchmark started: {', '.join(loads)}.", ""]
    if suite:
        lines += [
            (
                f"Command: `{suite.get('command', 'bash benchmarks/run.sh')}`; the suite took "
                f"{suite['total_seconds'] / 60:.1f} minutes."
            ),
            "",
        ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(found)]
    failed = [name for name, info in suite.get("benchmarks", {}).items() if info.get("returncode")]
    if failed:
        lines += ["", f"**Failed** (see their output): {', '.join(failed)}."]
    lines += [
        "",
        "Ratio: the paper's method's time over pepler's (for tokens/s, pepler's rate over the paper's).",
        "",
    ]
    lines += [f"- {n}" for n in notes(found)]
    lines += extraction_table(found)
    return "\n".join(lines) + "\n"


def chart(found: dict[str, dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed: no chart (pip install -r benchmarks/requirements.txt)",
            file=sys.stderr,
        )
        return False
    speed = [
        c
        for n in ORDER
        if n in found
        for c in found[n].get("cases", [])
        if c.get("chart") and c.get("speedup")
    ]
    budget = [
        c
        for n in ORDER
        if n in found
        for c in found[n].get("cases", [])
        if c.get("absolute") and c.get("target")
    ]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    names = [c["name"] for c in speed]
    values = [c["speedup"] for c in speed]
    colors = ["#2a9d8f" if c["met"] is not False else "#e76f51" for c in speed]
    ax.barh(names, values, color=colors)
    for y, c in enumerate(speed):
        ax.plot([c["target"], c["target"]], [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(c["speedup"] * 1.08, y, fmt_ratio(c["speedup"]), va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(values + [c["target"] for c in speed]) * 4)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up over the paper's method (log scale); black tick = target")
    ax.set_title("pepler vs the paper's method")
    ax = axes[1]
    names = [f"{c['name']} ({c['target_text']})" for c in budget]
    values = [c["pepler"] / c["target"] for c in budget]
    ax.barh(names, values, color=["#2a9d8f" if v < 1 else "#e76f51" for v in values])
    ax.axvline(1.0, color="black", linewidth=2)
    for y, c in enumerate(budget):
        ax.text(values[y] + 0.02, y, fmt_value(c["pepler"], c["unit"]), va="center", fontsize=9)
    ax.set_xlim(0, max(1.3, max(values, default=0) * 1.3))
    ax.invert_yaxis()
    ax.set_xlabel("share of the budget used (1 = the limit)")
    ax.set_title("absolute budgets")
    title = "pepler benchmarks — " + machine_line(found).split(";")[0]
    if found.get("suite", {}).get("quick"):
        title += " (quick run)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(results: Path) -> None:
    found = load(results)
    (results / "summary.md").write_text(markdown(found), encoding="utf-8")
    print(f"wrote {results / 'summary.md'}")
    if chart(found, results / "chart.png"):
        print(f"wrote {results / 'chart.png'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=BENCH / "results")
    args = p.parse_args(argv)
    write(args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
