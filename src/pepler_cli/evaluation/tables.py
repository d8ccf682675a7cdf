"""One writer per table format ``pepler compare`` prints: markdown, LaTeX (booktabs), CSV and a rich Table.

Each takes the header labels and rows of cells already formatted. The first ``lead`` columns are text (names,
keys, counts): left-aligned and escaped here. The rest are numbers: right-aligned and written as given, so a
caller's marks (bold for the best value, significance stars) stay marks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text


def md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


_LATEX_SPECIAL = {c: f"\\{c}" for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
    "†": r"\textdagger{}",  # comparison.DAGGER: a row that read the test record
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def markdown_table(header: Sequence[str], lead: int, rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = [
        "| " + " | ".join(md_escape(h) for h in header) + " |",
        "|" + "|".join(["---"] * lead + ["---:"] * (len(header) - lead)) + "|",
    ]
    for cells in rows:
        lines.append("| " + " | ".join([*(md_escape(c) for c in cells[:lead]), *cells[lead:]]) + " |")
    return "\n".join(lines) + "\n"


def latex_table(header: Sequence[str], lead: int, rows: Iterable[Sequence[str]]) -> str:
    """A booktabs tabular a paper can \\input (needs \\usepackage{booktabs})."""
    lines = [
        "\\begin{tabular}{" + "l" * lead + "r" * (len(header) - lead) + "}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
    ]
    for cells in rows:
        lines.append(" & ".join([*(latex_escape(c) for c in cells[:lead]), *cells[lead:]]) + " \\\\")
    return "\n".join([*lines, "\\bottomrule", "\\end{tabular}"]) + "\n"


def csv_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def rich_table(
    header: Sequence[str], lead: int, rows: Iterable[Sequence[str | Text]], caption: str | None = None
) -> Table:
    """A rich Table; the text columns are shown as they are (never read as rich markup)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title_justify="left", caption=caption, caption_justify="left")
    for label in header[:lead]:
        table.add_column(label, overflow="fold")
    for label in header[lead:]:
        table.add_column(label, justify="right", no_wrap=True)
    for cells in rows:
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells[:lead]), *cells[lead:])
    return table
