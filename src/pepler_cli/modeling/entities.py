"""Which row of the prompt's embedding tables belongs to which user and item id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pepler_cli.errors import PeplerError


@dataclass(frozen=True)
class EntityIndex:
    """User and item ids in a fixed order; a row of the prompt embedding tables per id."""

    users: tuple[str, ...]
    items: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_user_rows", {u: i for i, u in enumerate(self.users)})
        object.__setattr__(self, "_item_rows", {v: i for i, v in enumerate(self.items)})

    @classmethod
    def from_records(cls, records: Sequence[Any]) -> EntityIndex:
        """First-appearance order over every record, as the authors' entity dictionaries do."""
        users = dict.fromkeys(r.user for r in records)
        items = dict.fromkeys(r.item for r in records)
        return cls(tuple(users), tuple(items))

    def user_row(self, user: str, where: str) -> int:
        return _row(self._user_rows, "user", user, where)  # type: ignore[attr-defined]

    def item_row(self, item: str, where: str) -> int:
        return _row(self._item_rows, "item", item, where)  # type: ignore[attr-defined]


def _row(rows: dict[str, int], field: str, value: str, where: str) -> int:
    try:
        return rows[value]
    except KeyError:
        raise PeplerError(
            f"{where}: field '{field}': {value!r} was not seen when the run was trained"
        ) from None
