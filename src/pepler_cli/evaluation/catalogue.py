"""Every metric pepler reports, defined once: key, label, meaning, decimals, direction, in the paper's order.

``pepler score``'s tables, ``pepler compare``'s columns and their best-value marks and ``score --metrics`` all
read this catalogue. The paper's metrics come first; the ones beyond the paper follow, each in a family that
``--metrics`` can name (grounding, phrase, diversity, bias, meaning, fluency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pepler_cli.errors import UsageError

MISSING = "-"


@dataclass(frozen=True)
class Metric:
    key: str  # as in scores.yaml and score_predictions
    label: str  # as in the paper's tables
    meaning: str
    group: str  # Explainability, Text quality, Rating
    decimals: int
    lower_is_better: bool = False
    ranked: bool = True  # False: a property of the references, the same for every run; never marked best
    # True: a corpus count that grows or shrinks with the number of explanations (USR, FCR, Distinct, ...), so
    # groups of different sizes are not compared on it (no best–worst gap in `score --by`).
    size_dependent: bool = False
    # What each prediction must carry for it (``reference``, ``feature``): predictions of a pairs file
    # (generate --pairs) may have neither, and then it is not scored.
    needs: tuple[str, ...] = ()

    def format(self, value: float | None) -> str:
        return MISSING if value is None else f"{value:.{self.decimals}f}"

    @property
    def arrow(self) -> str:
        if not self.ranked:
            return ""
        return "↓" if self.lower_is_better else "↑"


def _text(key: str, label: str, meaning: str) -> Metric:
    return Metric(key, label, f"{meaning} ×100", "Text quality", 2, needs=("reference",))


FMR = Metric("fmr", "FMR", "feature matching ratio", "Explainability", 4, needs=("feature",))
FCR = Metric("fcr", "FCR", "feature coverage ratio", "Explainability", 4, size_dependent=True)
DIV = Metric("div", "DIV", "feature diversity", "Explainability", 3, lower_is_better=True)
USR = Metric("usr", "USR", "unique sentence ratio", "Explainability", 4, size_dependent=True)
USN = Metric("usn", "USN", "unique sentences", "Explainability", 0, size_dependent=True)
BLEU_1 = _text("bleu_1", "BLEU-1", "corpus BLEU-1")
BLEU_4 = _text("bleu_4", "BLEU-4", "corpus BLEU-4")
R1_P = _text("rouge_1_precision", "R1-P", "ROUGE-1 precision")
R1_R = _text("rouge_1_recall", "R1-R", "ROUGE-1 recall")
R1_F = _text("rouge_1_f", "R1-F", "ROUGE-1 F")
R2_P = _text("rouge_2_precision", "R2-P", "ROUGE-2 precision")
R2_R = _text("rouge_2_recall", "R2-R", "ROUGE-2 recall")
R2_F = _text("rouge_2_f", "R2-F", "ROUGE-2 F")
RL_P = _text("rouge_l_precision", "RL-P", "ROUGE-L precision")
RL_R = _text("rouge_l_recall", "RL-R", "ROUGE-L recall")
RL_F = _text("rouge_l_f", "RL-F", "ROUGE-L F (β = P/R)")
RMSE = Metric("rmse", "RMSE", "rating root mean squared error", "Rating", 3, lower_is_better=True)
MAE = Metric("mae", "MAE", "rating mean absolute error", "Rating", 3, lower_is_better=True)

# Grouped as pepler score prints them: explainability, text quality, rating.
SCORE_TABLE: tuple[Metric, ...] = (
    FMR, FCR, DIV, USR, USN, BLEU_1, BLEU_4, R1_P, R1_R, R1_F, R2_P, R2_R, R2_F, RL_P, RL_R, RL_F, RMSE, MAE
)  # fmt: skip
# The paper's Table 5 columns, in its order; then everything pepler measures, for --all-metrics.
PAPER_METRICS: tuple[Metric, ...] = (BLEU_1, BLEU_4, USR, FMR, FCR, DIV, R1_F, R2_F)
ALL_METRICS: tuple[Metric, ...] = (
    BLEU_1, BLEU_4, USR, USN, FMR, FCR, DIV, R1_P, R1_R, R1_F, R2_P, R2_R, R2_F, RL_P, RL_R, RL_F
)  # fmt: skip
RATING_METRICS: tuple[Metric, ...] = (RMSE, MAE)


# --- beyond the paper (issue 18): computed only when `pepler score --metrics` asks -----------------------


def _beyond(key: str, label: str, meaning: str, group: str, decimals: int = 4, **kwargs: Any) -> Metric:
    # Fractions in [0, 1] unless ``decimals`` says otherwise; see evaluation/beyond.py for what each counts.
    return Metric(key, label, meaning, group, decimals, **kwargs)


IFMR = _beyond("ifmr", "iFMR", "mentions a feature of the item's training records", "Grounding")
FEATURE_PRECISION = _beyond(
    "feature_precision", "F-Prec", "mentioned features that are the reference's", "Grounding",
    needs=("reference", "feature"),
)  # fmt: skip
FEATURE_RECALL = _beyond(
    "feature_recall", "F-Rec", "reference features mentioned", "Grounding", needs=("reference", "feature")
)
D_FHR = _beyond(
    "d_fhr", "D-FHR", "explanations with a feature the item never had", "Grounding", lower_is_better=True
)
C_FHR = _beyond(
    "c_fhr", "C-FHR", "mentions of features the item never had", "Grounding", lower_is_better=True
)
FMR_PHRASE = _beyond("fmr_phrase", "FMR-P", "FMR, whole feature phrases", "Phrase-aware", needs=("feature",))
FCR_PHRASE = _beyond("fcr_phrase", "FCR-P", "FCR, whole feature phrases", "Phrase-aware", size_dependent=True)
DIV_PHRASE = _beyond(
    "div_phrase", "DIV-P", "DIV, whole feature phrases", "Phrase-aware", decimals=3, lower_is_better=True
)
UUSR = _beyond("uusr", "uUSR", "USR within each user's explanations", "Diversity")
IUSR = _beyond("iusr", "iUSR", "USR within each item's explanations", "Diversity")
DISTINCT_1 = _beyond(
    "distinct_1", "Dist-1", "distinct unigrams / all (corpus)", "Diversity", size_dependent=True
)
DISTINCT_2 = _beyond(
    "distinct_2", "Dist-2", "distinct bigrams / all (corpus)", "Diversity", size_dependent=True
)
ENTR_2 = _beyond("entr_2", "ENTR-2", "bigram entropy (nats)", "Diversity", decimals=3, size_dependent=True)
REPEAT_3 = _beyond(
    "repeat_3", "Rep-3", "explanations repeating a 3-gram of their own", "Diversity", lower_is_better=True
)
POP_SHARE = _beyond(
    "pop_top10_share", "Top10%", "mentions of the 10% most frequent features", "Popularity bias",
    lower_is_better=True,
)  # fmt: skip
POP_SHARE_REFERENCE = _beyond(
    "pop_top10_share_reference", "Top10% ref", "the same in the references", "Popularity bias", ranked=False,
    needs=("reference",),
)  # fmt: skip
GINI = _beyond(
    "gini",
    "Gini",
    "Gini coefficient of feature use",
    "Popularity bias",
    lower_is_better=True,
    size_dependent=True,
)
GINI_REFERENCE = _beyond(
    "gini_reference", "Gini ref", "the same in the references", "Popularity bias", ranked=False,
    needs=("reference",),
)  # fmt: skip
EMBEDDING_COSINE = _beyond(
    "embedding_cosine", "Emb-cos", "sentence-embedding cosine (MiniLM)", "Meaning", needs=("reference",)
)
BERTSCORE_F1 = _beyond("bertscore_f1", "BERTScore", "BERTScore F1 (MiniLM)", "Meaning", needs=("reference",))
PERPLEXITY = _beyond(
    "perplexity", "PPL", "token perplexity under SmolLM2-135M", "Fluency", decimals=2, lower_is_better=True
)

# The families `--metrics` names, in the order `pepler score` prints them. `all` is every family but fluency,
# which loads a language model and is asked for by name.
FAMILIES: dict[str, tuple[Metric, ...]] = {
    "grounding": (IFMR, FEATURE_PRECISION, FEATURE_RECALL, D_FHR, C_FHR),
    "phrase": (FMR_PHRASE, FCR_PHRASE, DIV_PHRASE),
    "diversity": (UUSR, IUSR, DISTINCT_1, DISTINCT_2, ENTR_2, REPEAT_3),
    "bias": (POP_SHARE, POP_SHARE_REFERENCE, GINI, GINI_REFERENCE),
    "meaning": (EMBEDDING_COSINE, BERTSCORE_F1),
    "fluency": (PERPLEXITY,),
}
IN_ALL = ("grounding", "phrase", "diversity", "bias", "meaning")
BEYOND_METRICS: tuple[Metric, ...] = tuple(metric for family in FAMILIES.values() for metric in family)
METRIC_KEYS = frozenset(metric.key for metric in (*SCORE_TABLE, *BEYOND_METRICS))


def select_beyond(spec: str) -> tuple[Metric, ...]:
    """The metrics beyond the paper that ``--metrics SPEC`` adds to the paper's (which are always scored).

    SPEC is ``paper`` (none), ``all`` (every family but fluency) or a comma-separated list of families and
    metric keys, e.g. ``grounding,distinct_2,fluency``. Returned in the catalogue's order, each once.
    """
    chosen: set[str] = set()
    for name in (part.strip().lower().replace("-", "_") for part in spec.split(",")):
        if name == "paper":
            continue
        if name == "all":
            chosen.update(metric.key for family in IN_ALL for metric in FAMILIES[family])
        elif name in FAMILIES:
            chosen.update(metric.key for metric in FAMILIES[name])
        elif name in {metric.key for metric in BEYOND_METRICS}:
            chosen.add(name)
        else:
            families = ", ".join(FAMILIES)
            raise UsageError(
                f"--metrics: unknown metric {name!r}; give paper, all, a family ({families}) "
                f"or metric keys ({', '.join(m.key for m in BEYOND_METRICS)})"
            )
    return tuple(metric for metric in BEYOND_METRICS if metric.key in chosen)


def needing(missing: set[str]) -> tuple[Metric, ...]:
    """The metrics (the paper's and the others) that need what some predictions lack (``reference``,
    ``feature``), in the catalogue's order."""
    return tuple(m for m in (*SCORE_TABLE, *BEYOND_METRICS) if missing.intersection(m.needs))
