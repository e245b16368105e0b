"""What each store operation asks of Letta: one sans-I/O plan per operation.

A plan (`langchain_letta.plans`) yields the letta-client calls of one `get`, `put`,
`search`, `list_namespaces` or attachment of the archival tools and decides from their
answers; `LettaStore` runs it with the sync or the async client. The layout and the
costs they follow are in the `LettaStore` docstring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import GetOp, ListNamespacesOp, Op, PutOp, Result, SearchItem, SearchOp

from langchain_letta.errors import LettaNotFoundError
from langchain_letta.plans import Call, Plan
from langchain_letta.store.encoding import encode, key_marker, matches_filter, prefix_tag
from langchain_letta.store.rows import (
    ARCHIVAL_NAMESPACE,
    BLOCKS_NAMESPACE,
    Row,
    archival_item,
    block_item,
    block_matches,
    created_at,
    dedupe,
    list_marker,
    namespace_matches,
    newest,
    page_items,
    plain,
    row_of_passage,
    row_of_result,
    sources_of,
    store_item,
)

__all__ = ["Operations"]

ARCHIVAL_TOOLS = ("archival_memory_search", "archival_memory_insert")
PAGE_SIZE = 100
KEY_PAGE_SIZE = 20
SEARCH_TOP_K = 50
SEARCH_DEPTH = 1000  # passages nearest the query that a search reads at most


class Operations:
    """The plans of the store operations on one agent's memory.

    Args:
        agent_id: the agent whose memory backs the store.

    """

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id

    def attach_archival_tools(self) -> Plan[list[str]]:
        """Attach the archival tools the agent lacks; the names attached now."""
        tools = yield Call("agents.tools.list", (self.agent_id,), {"limit": PAGE_SIZE})
        attached = {tool.name for tool in page_items(tools)}
        names = []
        for name in ARCHIVAL_TOOLS:
            if name in attached:
                continue
            found = yield Call("tools.list", (), {"name": name})
            ids = [tool.id for tool in page_items(found) if tool.name == name and tool.id]
            if ids:  # a server without the tool attaches nothing for it
                yield Call("agents.tools.attach", (ids[0],), {"agent_id": self.agent_id})
                names.append(name)
        return names

    # ------------------------------------------------------------------ operations

    def plan(self, op: Op) -> Plan[Result]:
        """The plan of one checked operation."""
        if isinstance(op, GetOp):
            return self._get(tuple(op.namespace), op.key)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, SearchOp):
            return self._search(op)
        assert isinstance(op, ListNamespacesOp)
        return self._list_namespaces(op)

    def _get(self, namespace: tuple[str, ...], key: str) -> Plan[Result]:
        if namespace == BLOCKS_NAMESPACE:
            try:
                block = yield Call("agents.blocks.retrieve", (key,), {"agent_id": self.agent_id})
            except LettaNotFoundError:
                return None
            return plain(block_item(block))
        if namespace == ARCHIVAL_NAMESPACE:
            rows = yield from self._rows(None, stop=lambda row: row.id == key)
            found = [row for row in rows if row.id == key and row.item is None]
            return plain(archival_item(found[0])) if found else None
        rows = yield from self._key_rows(namespace, key)
        if not rows:
            return None
        winner = newest(rows)
        yield from self._delete_rows([row for row in rows if row is not winner])
        return plain(store_item(winner))

    def _put(self, op: PutOp) -> Plan[None]:
        namespace = tuple(op.namespace)
        if namespace == BLOCKS_NAMESPACE:
            assert op.value is not None
            changes = {k: op.value[k] for k in ("value", "description", "limit") if k in op.value}
            yield Call("agents.blocks.update", (op.key,), {"agent_id": self.agent_id, **changes})
            return None
        if namespace == ARCHIVAL_NAMESPACE:
            yield from self._delete_rows([Row(op.key, "", datetime.now(UTC), [])])
            return None
        old = yield from self._key_rows(namespace, op.key)
        if op.value is not None:
            first = min((created_at(row) for row in old), default=None)
            index = op.index if isinstance(op.index, list) or op.index is False else None
            text, tags = encode(namespace, op.key, dict(op.value), index=index, created_at=first)
            kwargs = {"text": text, "tags": tags}
            yield Call("agents.passages.create", (self.agent_id,), kwargs, retry=False)
        yield from self._delete_rows(old)
        return None

    def _search(self, op: SearchOp) -> Plan[list[SearchItem]]:
        prefix = tuple(op.namespace_prefix)
        wanted = op.offset + op.limit
        covers = sources_of(prefix)
        items: list[SearchItem] = []
        if covers["store"] or covers["archival"]:

            def keep(row: Row) -> SearchItem | None:
                stored = row.item
                if stored is None:
                    item = archival_item(row) if covers["archival"] else None
                elif stored.namespace[: len(prefix)] == prefix:
                    item = store_item(row)
                else:
                    item = None
                return item if item is not None and matches_filter(item.value, op.filter) else None

            if op.query:
                tag = prefix_tag(prefix) if prefix and covers["store"] else None
                items = yield from self._semantic(op.query, keep, wanted, tag)
            else:
                marker = list_marker(prefix, covers)
                rows = yield from self._rows(marker, stop=None, wanted=(keep, wanted))
                items = dedupe([kept for row in rows if (kept := keep(row)) is not None])
        if covers["blocks"] and len(items) < wanted:
            blocks = yield Call("agents.blocks.list", (self.agent_id,), {"limit": PAGE_SIZE})
            for block in page_items(blocks):
                item = block_item(block)
                if block_matches(item, op.query) and matches_filter(item.value, op.filter):
                    items.append(item)
        return items[op.offset : wanted]

    def _list_namespaces(self, op: ListNamespacesOp) -> Plan[list[tuple[str, ...]]]:
        rows = yield from self._rows(None, stop=None)
        found: set[tuple[str, ...]] = {BLOCKS_NAMESPACE}
        for row in rows:
            stored = row.item
            found.add(stored.namespace if stored else ARCHIVAL_NAMESPACE)
        if op.max_depth is not None:
            found = {namespace[: op.max_depth] for namespace in found}
        conditions = op.match_conditions or ()
        kept = sorted(ns for ns in found if all(namespace_matches(ns, c) for c in conditions))
        return kept[op.offset : op.offset + op.limit]

    # ------------------------------------------------------------------ requests

    def _key_rows(self, namespace: tuple[str, ...], key: str) -> Plan[list[Row]]:
        """Every passage of one (namespace, key): one request unless a race left many."""
        marker = key_marker(namespace, key)
        rows = yield from self._rows(marker, stop=None, page_size=KEY_PAGE_SIZE)
        return [row for row in rows if (s := row.item) and (s.namespace, s.key) == (namespace, key)]

    def _rows(
        self,
        search: str | None,
        *,
        stop: Callable[[Row], bool] | None,
        wanted: tuple[Callable[[Row], Any], int] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Plan[list[Row]]:
        """Passages oldest first (text containing `search`), paged until done or enough."""
        rows: list[Row] = []
        after: str | None = None
        kept = 0
        while True:
            kwargs: dict[str, Any] = {"limit": page_size, "ascending": True}
            if search:
                kwargs["search"] = search
            if after:
                kwargs["after"] = after
            page = yield Call("agents.passages.list", (self.agent_id,), kwargs)
            batch = [row_of_passage(passage) for passage in page]
            rows += batch
            if wanted is not None:
                kept += sum(1 for row in batch if wanted[0](row) is not None)
            done = (stop is not None and any(stop(row) for row in batch)) or (
                wanted is not None and kept >= wanted[1]
            )
            if done or len(batch) < page_size:
                return rows
            after = batch[-1].id

    def _semantic(
        self,
        query: str,
        keep: Callable[[Row], SearchItem | None],
        wanted: int,
        tag: str | None,
    ) -> Plan[list[SearchItem]]:
        """Letta's archival search over the passages nearest `query`.

        The server cuts at `top_k` before it filters by `tag`, so a prefix search
        reads the nearest `SEARCH_DEPTH` passages in one request. Without a tag (the
        empty prefix, the agent's own passages) it reads `max(50, 4 * wanted)`, and
        the nearest `SEARCH_DEPTH` when those hold too few items.
        """
        top_k = SEARCH_DEPTH if tag else max(SEARCH_TOP_K, 4 * wanted)
        while True:
            kwargs: dict[str, Any] = {"query": query, "top_k": top_k}
            if tag:
                kwargs["tags"] = [tag]
            response = yield Call("agents.passages.search", (self.agent_id,), kwargs)
            rows = [row_of_result(result) for result in response.results]
            items = dedupe([kept for row in rows if (kept := keep(row)) is not None])
            if len(items) >= wanted or len(rows) < top_k or top_k >= SEARCH_DEPTH:
                return items
            top_k = SEARCH_DEPTH

    def _delete_rows(self, rows: list[Row]) -> Plan[None]:
        for row in rows:
            with contextlib.suppress(LettaNotFoundError):  # another process deleted it first
                yield Call("agents.passages.delete", (row.id,), {"agent_id": self.agent_id})
        return None
