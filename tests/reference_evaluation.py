"""A deliberately naive second implementation of the paper's evaluation, written from EVALUATION.md alone.

It shares no code with pepler_cli.evaluation.metrics and does not use rouge-score: plain string replacement and a
character loop for the tokens, dictionaries for n-gram counts, a full dynamic-programming table for the LCS,
a list scan for USR and the O(N^2) loop over pairs for DIV. It is slow on purpose, so that it is easy to
check by eye; tests compare the fast library against it on randomized data.
"""

from __future__ import annotations

import math

CLITICS = ["'s", "'m", "'ve", "n't", "'re", "'d", "'ll"]
SINGLE = {"(": "(", ")": ")"}  # spaced out one by one
# A run of the same mark becomes one token; ':' counts as ',' and ';' as '.'.
RUNS = {",": ",", ".": ".", "!": "!", "?": "?", ":": ",", ";": "."}


def tokens(text: str) -> list[str]:
    for clitic in CLITICS:
        text = text.replace(clitic, " " + clitic)
    pieces = []
    previous = None
    for char in text:
        if char in SINGLE:
            pieces.append(" " + SINGLE[char] + " ")
            previous = None
        elif char in RUNS:
            if char != previous:
                pieces.append(" " + RUNS[char] + " ")
            previous = char
        else:
            pieces.append(char)
            previous = None
    return "".join(pieces).split()


def ngram_counts(words: list[str], n: int) -> dict[tuple[str, ...], int]:
    counts: dict[tuple[str, ...], int] = {}
    for start in range(len(words) - n + 1):
        gram = tuple(words[start : start + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def bleu(references: list[list[str]], hypotheses: list[list[str]], order: int) -> float:
    ref_total = sum(len(r) for r in references)
    hyp_total = sum(len(h) for h in hypotheses)
    if ref_total == 0 or hyp_total == 0:
        return 0.0
    log_sum = 0.0
    for n in range(1, order + 1):
        matched = 0
        possible = 0
        for ref, hyp in zip(references, hypotheses):
            ref_counts = ngram_counts(ref, n)
            hyp_counts = ngram_counts(hyp, n)
            for gram, count in hyp_counts.items():
                matched += min(count, ref_counts.get(gram, 0))
            possible += max(len(hyp) - n + 1, 0)
        if matched == 0:
            return 0.0
        log_sum += math.log(matched / possible)
    penalty = 1.0 if hyp_total >= ref_total else math.exp(1 - ref_total / hyp_total)
    return 100 * penalty * math.exp(log_sum / order)


def rouge_words(words: list[str]) -> list[str]:
    # The paper split the text on single spaces: "" gives [""], one empty token.
    return " ".join(words).split(" ")


def rouge_n(ref: list[str], hyp: list[str], n: int) -> tuple[float, float, float]:
    ref_set = set(ngram_counts(ref, n))
    hyp_set = set(ngram_counts(hyp, n))
    overlap = len(ref_set & hyp_set)
    p = overlap / len(hyp_set) if hyp_set else 0.0
    r = overlap / len(ref_set) if ref_set else 0.0
    return p, r, 2 * p * r / (p + r + 1e-8)


def lcs_length(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            if a[i] == b[j]:
                table[i + 1][j + 1] = table[i][j] + 1
            else:
                table[i + 1][j + 1] = max(table[i][j + 1], table[i + 1][j])
    return table[len(a)][len(b)]


def rouge_l(ref: list[str], hyp: list[str]) -> tuple[float, float, float]:
    lcs = lcs_length(ref, hyp)
    if lcs == 0:
        return 0.0, 0.0, 0.0
    p = lcs / len(hyp)
    r = lcs / len(ref)
    beta = p / r
    return p, r, (1 + beta**2) * p * r / (r + beta**2 * p)


def evaluate(
    pairs: list[dict],
    feature_set: set[str],
    rating_range: tuple[float, float] | None,
) -> dict[str, float]:
    """``pairs`` are dicts with reference, generated, feature and optionally rating, predicted_rating."""
    refs = [tokens(p["reference"]) for p in pairs]
    gens = [tokens(p["generated"]) for p in pairs]
    n = len(pairs)
    result: dict[str, float] = {"n": n, "bleu_1": bleu(refs, gens, 1), "bleu_4": bleu(refs, gens, 4)}

    sums: dict[str, float] = {}
    for ref, gen in zip(refs, gens):
        ref_words, gen_words = rouge_words(ref), rouge_words(gen)
        for name, (p, r, f) in (
            ("rouge_1", rouge_n(ref_words, gen_words, 1)),
            ("rouge_2", rouge_n(ref_words, gen_words, 2)),
            ("rouge_l", rouge_l(ref_words, gen_words)),
        ):
            for part, value in (("precision", p), ("recall", r), ("f", f)):
                key = f"{name}_{part}"
                sums[key] = sums.get(key, 0.0) + value
    for key, total in sums.items():
        result[key] = 100 * total / n

    unique: list[list[str]] = []
    for gen in gens:
        if gen not in unique:
            unique.append(gen)
    result["usn"] = len(unique)
    result["usr"] = len(unique) / n

    found = [{word for word in gen if word in feature_set} for gen in gens]
    result["fmr"] = sum(1 for f, p in zip(found, pairs) if p["feature"] in f) / n
    covered: set[str] = set()
    for f in found:
        covered |= f
    result["fcr"] = len(covered) / len(feature_set)
    if n >= 2:
        shared = 0
        for i in range(n):
            for j in range(i + 1, n):
                shared += len(found[i] & found[j])
        result["div"] = shared / (n * (n - 1) / 2)

    if all(p.get("rating") is not None and p.get("predicted_rating") is not None for p in pairs):
        squared = 0.0
        absolute = 0.0
        for p in pairs:
            guess = p["predicted_rating"]
            if rating_range is not None:
                guess = max(rating_range[0], min(rating_range[1], guess))
            squared += (guess - p["rating"]) ** 2
            absolute += abs(guess - p["rating"])
        result["rmse"] = math.sqrt(squared / n)
        result["mae"] = absolute / n
    return result
