"""The store's passages as rows, and rows as LangGraph items: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import Item, MatchCondition, SearchItem

from langchain_letta.errors import LettaInputError
from langchain_letta.store.encoding import (
    STORE_TAG,
    STORE_WORD,
    StoredItem,
    decode,
    prefix_marker,
)

__all__ = [
    "ARCHIVAL_NAMESPACE",
    "BLOCKS_NAMESPACE",
    "RESERVED_ROOT",
    "Row",
    "archival_item",
    "block_item",
    "block_matches",
    "check_page",
    "created_at",
    "dedupe",
    "list_marker",
    "namespace_matches",
    "newest",
    "page_items",
    "plain",
    "row_of_passage",
    "row_of_result",
    "sources_of",
    "store_item",
]

BLOCKS_NAMESPACE: tuple[str, ...] = ("letta", "blocks")

ARCHIVAL_NAMESPACE: tuple[str, ...] = ("letta", "archival")

RESERVED_ROOT = "letta"


@dataclass(frozen=True)
class Row:
    """A passage as the list and search endpoints return it."""

    id: str
    text: str
    stored_at: datetime
    tags: list[str]

    @property
    def item(self) -> StoredItem | None:
        """The store item, for passages the store wrote (its tag: not a copy the agent made)."""
        return decode(self.text) if STORE_TAG in self.tags else None


def row_of_passage(passage: Any) -> Row:
    """A passage as `passages.list` returns it, as a row."""
    return Row(passage.id, passage.text, passage.created_at, list(passage.tags or []))


def row_of_result(result: Any) -> Row:
    """A passage as `passages.search` returns it, as a row."""
    stored_at = datetime.fromisoformat(result.timestamp).astimezone(UTC)
    return Row(result.id, result.content, stored_at, list(result.tags or []))


def newest(rows: list[Row]) -> Row:
    """The rule for several passages of one key: the one the server stored last wins."""
    return max(rows, key=lambda row: (row.stored_at, row.id))


def namespace_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """Whether `namespace` meets a `list_namespaces` condition."""
    path = tuple(condition.path)
    if not path:
        return True
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    return all(want in ("*", have) for have, want in zip(part, path, strict=True))


def page_items(page: Any) -> list[Any]:
    """The items of one page (sync and async pages alike; no auto-paging)."""
    return list(getattr(page, "items", page))


def check_page(limit: Any, offset: Any) -> None:
    """Refuse a negative or non-integer `limit` or `offset` (nothing sent)."""
    if not isinstance(limit, int) or limit < 0 or not isinstance(offset, int) or offset < 0:
        raise LettaInputError("limit and offset are non-negative integers.")


def sources_of(prefix: tuple[str, ...]) -> dict[str, bool]:
    """Which sources a namespace prefix reaches."""
    under_letta = prefix[:1] == (RESERVED_ROOT,)
    return {
        "store": not under_letta,
        "archival": ARCHIVAL_NAMESPACE[: len(prefix)] == prefix,
        "blocks": BLOCKS_NAMESPACE[: len(prefix)] == prefix,
    }


def list_marker(prefix: tuple[str, ...], covers: dict[str, bool]) -> str | None:
    """The marker text a listing under `prefix` searches for, if one narrows it."""
    if covers["archival"]:
        return None  # the agent's own passages carry no marker
    return prefix_marker(prefix) if prefix else STORE_WORD


def created_at(row: Row) -> datetime:
    """When the store first wrote the row's item (its own timestamp, else the passage's)."""
    stored = row.item
    return stored.created_at if stored and stored.created_at else row.stored_at


def store_item(row: Row) -> SearchItem:
    """A store row as a LangGraph search item."""
    stored = row.item
    assert stored is not None
    return SearchItem(
        namespace=stored.namespace,
        key=stored.key,
        value=stored.value,
        created_at=created_at(row),
        updated_at=row.stored_at,
    )


def archival_item(row: Row) -> SearchItem:
    """A passage the agent wrote itself, as an item under `("letta", "archival")`."""
    return SearchItem(
        namespace=ARCHIVAL_NAMESPACE,
        key=row.id,
        value={"text": row.text, "tags": row.tags},
        created_at=row.stored_at,
        updated_at=row.stored_at,
    )


def block_item(block: Any) -> SearchItem:
    """A core memory block as an item under `("letta", "blocks")`."""
    now = datetime.now(UTC)
    value = {"value": block.value, "description": block.description, "limit": block.limit}
    return SearchItem(
        namespace=BLOCKS_NAMESPACE, key=block.label, value=value, created_at=now, updated_at=now
    )


def plain(item: SearchItem) -> Item:
    """A search item as a plain item (what `get` returns)."""
    return Item(
        namespace=item.namespace,
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def block_matches(item: Item, query: str | None) -> bool:
    """Whether a block item matches a query: any word of 3+ letters in its label or value."""
    if not query:
        return True
    text = f"{item.key} {item.value.get('value') or ''}".lower()
    return any(word in text for word in query.lower().split() if len(word) > 2)


def dedupe(items: list[SearchItem]) -> list[SearchItem]:
    """One item per (namespace, key), in first-seen order, the newest version kept."""
    best: dict[tuple[tuple[str, ...], str], SearchItem] = {}
    for item in items:
        slot = (item.namespace, item.key)
        if slot not in best or item.updated_at > best[slot].updated_at:
            best[slot] = item
    return list(best.values())
