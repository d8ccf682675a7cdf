"""Every metric pepler reports, defined once: key, label, meaning, decimals, direction, in the paper's order.

``pepler score``'s table, ``pepler compare``'s columns and their best-value marks all read this catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

MISSING = "-"


@dataclass(frozen=True)
class Metric:
    key: str  # as in scores.yaml and score_predictions
    label: str  # as in the paper's tables
    meaning: str
    group: str  # Explainability, Text quality, Rating
    decimals: int
    lower_is_better: bool = False

    def format(self, value: float | None) -> str:
        return MISSING if value is None else f"{value:.{self.decimals}f}"

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


def _text(key: str, label: str, meaning: str) -> Metric:
    return Metric(key, label, f"{meaning} ×100", "Text quality", 2)


FMR = Metric("fmr", "FMR", "feature matching ratio", "Explainability", 4)
FCR = Metric("fcr", "FCR", "feature coverage ratio", "Explainability", 4)
DIV = Metric("div", "DIV", "feature diversity", "Explainability", 3, lower_is_better=True)
USR = Metric("usr", "USR", "unique sentence ratio", "Explainability", 4)
USN = Metric("usn", "USN", "unique sentences", "Explainability", 0)
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
METRIC_KEYS = frozenset(metric.key for metric in SCORE_TABLE)
