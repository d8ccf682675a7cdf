"""The paper's Table 4 columns for a dataset, and the published values to print beside them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table


@dataclass(frozen=True)
class DatasetStatistics:
    """Table 4 of the paper: sizes and densities of a dataset."""

    users: int
    items: int
    records: int
    features: int
    records_per_user: float
    records_per_item: float
    words_per_explanation: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Li, Zhang, Chen, "Personalized Prompt Learning for Explainable Recommendation", ACM TOIS 2023, Table 4.
PAPER_TABLE4: dict[str, DatasetStatistics] = {
    "tripadvisor": DatasetStatistics(9_765, 6_280, 320_023, 5_069, 32.77, 50.96, 13.01),
    "amazon": DatasetStatistics(7_506, 7_360, 441_783, 5_399, 58.86, 60.02, 14.14),
    "yelp": DatasetStatistics(27_147, 20_266, 1_293_247, 7_340, 47.64, 63.81, 12.32),
}
PAPER_DATASET_TITLES = {
    "tripadvisor": "TripAdvisor Hong Kong",
    "amazon": "Amazon Movies & TV",
    "yelp": "Yelp 2019",
}


def compute_statistics(
    users: Iterable[str], items: Iterable[str], texts: Sequence[str], features: Iterable[str]
) -> DatasetStatistics:
    """Counts of distinct users, items and features; records per user/item; mean words per explanation.

    Words are whitespace-separated tokens of the (truncated) explanation, as the paper counts them.
    """
    n_users = len(set(users))
    n_items = len(set(items))
    n_records = len(texts)
    words = sum(len(text.split()) for text in texts)
    return DatasetStatistics(
        users=n_users,
        items=n_items,
        records=n_records,
        features=len(set(features)),
        records_per_user=round(n_records / n_users, 2) if n_users else 0.0,
        records_per_item=round(n_records / n_items, 2) if n_items else 0.0,
        words_per_explanation=round(words / n_records, 2) if n_records else 0.0,
    )


_ROWS = (
    ("users", "Users", "{:,}"),
    ("items", "Items", "{:,}"),
    ("records", "Records", "{:,}"),
    ("features", "Features", "{:,}"),
    ("records_per_user", "Records / user", "{:.2f}"),
    ("records_per_item", "Records / item", "{:.2f}"),
    ("words_per_explanation", "Words / explanation", "{:.2f}"),
)


def statistics_table(name: str, stats: DatasetStatistics, paper: DatasetStatistics | None = None) -> Table:
    """A rich Table with this dataset's Table-4 values, and the paper's beside them when given."""
    table = Table(title=f"{name}", caption="the columns of the paper's Table 4")
    table.add_column("statistic")
    table.add_column("prepared", justify="right")
    if paper is not None:
        table.add_column("paper", justify="right")
    for key, label, fmt in _ROWS:
        row = [label, fmt.format(getattr(stats, key))]
        if paper is not None:
            row.append(fmt.format(getattr(paper, key)))
        table.add_row(*row)
    return table
