"""`LettaStore`: a LangGraph `BaseStore` over a Letta agent's memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.clients import for_running_loop, shared_clients
from langchain_letta.connection import Endpoint, resolve_api_key, resolve_endpoint
from langchain_letta.errors import LettaInputError, LettaNotFoundError
from langchain_letta.plans import Call, Plan, arun, run
from langchain_letta.store.encoding import (
    check_key,
    check_namespace,
    check_value,
    encode,
    key_marker,
    matches_filter,
    prefix_tag,
)
from langchain_letta.store.rows import (
    ARCHIVAL_NAMESPACE,
    BLOCKS_NAMESPACE,
    RESERVED_ROOT,
    Row,
    archival_item,
    block_item,
    block_matches,
    check_page,
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

__all__ = ["ARCHIVAL_NAMESPACE", "BLOCKS_NAMESPACE", "LettaStore"]

ARCHIVAL_TOOLS = ("archival_memory_search", "archival_memory_insert")
PAGE_SIZE = 100
KEY_PAGE_SIZE = 20
SEARCH_TOP_K = 50
SEARCH_DEPTH = 1000  # passages nearest the query that a search reads at most
T = TypeVar("T")


class LettaStore(BaseStore):
    """LangGraph long-term store kept in a Letta agent's memory.

    What a graph node puts, the agent can find with its archival search; what the
    agent inserted into its archival memory, a node can search. Every conversation of
    the agent shares this memory.

    Setup:
        ```bash
        pip install "langchain-letta[langgraph]"
        export LETTA_BASE_URL="http://localhost:8283"
        ```

    Key init args:
        agent_id: str
            The agent whose memory backs the store.

    Connection args:
        `base_url`, `api_key`, `timeout`, `max_retries`, `client`,
        `async_client`: as for `ChatLetta`.

    Use in a graph:
        ```python
        from langchain_letta import LettaStore

        store = LettaStore(agent_id=AGENT_ID)
        graph = builder.compile(store=store)

        # in a node
        store.put(("memories", "ada"), "tea", {"fact": "Ada drinks green tea"})
        store.search(("memories",), query="what does Ada drink?")
        ```

    Layout:
        - Any namespace not under `("letta", ...)`: one archival passage per
          (namespace, key). Its text is the value's fields as `field: text` lines
          (what the embedding and the agent read; `index` of `put` picks the
          fields), then a marker line and the item as JSON. Its tags are
          `langgraph-store` and one `ns:<labels joined by '.'>` per namespace
          prefix (`ns:users`, `ns:users.ada`), for the agent's tag searches.
        - `("letta", "archival")`: the passages the store did not write (the agent's
          own `archival_memory_insert`, other apps). Key: the passage id; value:
          `{"text": ..., "tags": [...]}`. `put(..., None)` deletes one; other puts
          raise (the server chooses passage ids).
        - `("letta", "blocks")`: the agent's core memory blocks, key = label, value =
          `{"value": ..., "description": ..., "limit": ...}`. `put` with
          `{"value": "..."}` updates the block every session sees. Blocks cannot be
          deleted here, and Letta 0.16.8 gives blocks no timestamps (items show the
          read time).

    Put replaces:
        Letta cannot edit a passage, so `put` reads the key's passages, writes the
        new one (keeping the first `created_at`) and then deletes the old ones. Only
        passages tagged `langgraph-store` are items: a copy the agent makes of one
        shows under `("letta", "archival")`.
        When several processes put one key at once, each may write its passage
        before it sees the others'. The rule: the passage the server stored last
        (by its `created_at`, then its id) is the item, for every read in every
        process; a `get` that sees older passages of the key deletes them, and so
        does the next `put`. A failed write stores nothing; a failed delete leaves
        an older passage that reads ignore.

    Cost (requests to Letta):
        `get` 1; `put` 2 for a new key, 3 to replace one (Letta has no passage
        update); `delete` 1 plus one per passage; `search` 1 for up to 100
        items without a query, 1 with a query under a prefix (Letta filters by the
        prefix's tag among the 1,000 passages nearest the query: farther ones are not
        searched; with the empty prefix 1, or 2 when the 50 nearest hold too few);
        `list_namespaces` one per 100
        passages, and so does a `get` in `("letta", "archival")` (Letta 0.16.8 has
        no endpoint that reads one passage). The first insert of an agent takes about
        a second (embedding).

    Semantic search:
        `query` ranks by Letta's archival search over the agent's embedding model;
        results carry no score (Letta returns none). `filter` matches value fields
        (equality or `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`).
        TTLs are not supported.

    Bad input raises `LettaInputError` before anything
    is sent: an empty or non-string label, a label with `'.'` (the tag separator),
    a key that is empty or longer than 512 characters, a value that is not a
    JSON-serialisable dict, a write under `("letta", ...)` that the layout
    above does not allow.
    """

    supports_ttl = False

    def __init__(
        self,
        agent_id: str,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        client: Letta | None = None,
        async_client: AsyncLetta | None = None,
    ) -> None:
        if not isinstance(agent_id, str) or not agent_id:
            raise LettaInputError("LettaStore needs an agent_id.")
        self.agent_id = agent_id
        in_url = resolve_endpoint(base_url, None)  # credentials in the URL, if any
        key = resolve_api_key(api_key)
        endpoint = in_url if key is None else Endpoint(in_url.url, key)
        self._client, self._async_client = shared_clients(
            endpoint,
            timeout=timeout,
            max_retries=max_retries,
            client=client,
            async_client=async_client,
        )

    def __repr__(self) -> str:
        return f"LettaStore(agent_id={self.agent_id!r})"

    # ------------------------------------------------------------------ BaseStore

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in order (each as few requests as the layout allows)."""
        plans = self._plans(ops)
        return [self._run(plan) for plan in plans]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of `batch`."""
        plans = self._plans(ops)
        return [await self._arun(plan) for plan in plans]

    def attach_archival_tools(self) -> list[str]:
        """Attach Letta's `archival_memory_search` and `_insert` tools to the agent.

        Then the agent itself finds what nodes put, and what it inserts shows under
        `("letta", "archival")`. Returns the names attached now (tools already
        attached, or that the server lacks, are skipped).
        """
        return self._run(self._attach())

    async def aattach_archival_tools(self) -> list[str]:
        """Async twin of `attach_archival_tools`."""
        return await self._arun(self._attach())

    def _attach(self) -> Plan[list[str]]:
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

    # ------------------------------------------------------------------ drivers

    def _plans(self, ops: Iterable[Op]) -> list[Plan[Result]]:
        """Check every op (raising before any request), then plan each one."""
        ops = list(ops)
        for op in ops:
            self._check(op)
        return [self._plan(op) for op in ops]

    def _run(self, plan: Plan[T]) -> T:
        return run(plan, self._client)

    async def _arun(self, plan: Plan[T]) -> T:
        return await arun(plan, for_running_loop(self._async_client))

    # ------------------------------------------------------------------ checks

    def _check(self, op: Op) -> None:
        if isinstance(op, GetOp):
            check_namespace(op.namespace)
            check_key(op.key)
        elif isinstance(op, PutOp):
            self._check_put(op)
        elif isinstance(op, SearchOp):
            check_namespace(op.namespace_prefix, allow_empty=True)
            check_page(op.limit, op.offset)
            if op.query is not None and not isinstance(op.query, str):
                raise LettaInputError("A search query is a string.")
        elif isinstance(op, ListNamespacesOp):
            check_page(op.limit, op.offset)
            for condition in op.match_conditions or ():
                labels = tuple(label for label in condition.path if label != "*")
                check_namespace(labels, allow_empty=True)
            if op.max_depth is not None and op.max_depth < 1:
                raise LettaInputError("max_depth must be at least 1.")
        else:
            raise LettaInputError(f"Unknown store operation {type(op).__name__}.")

    def _check_put(self, op: PutOp) -> None:
        namespace = check_namespace(op.namespace)
        check_key(op.key)
        if op.value is not None:
            check_value(op.value)
        if getattr(op, "ttl", None) is not None:
            raise LettaInputError("LettaStore does not support TTLs.")
        if namespace[0] != RESERVED_ROOT:
            return
        if namespace == BLOCKS_NAMESPACE:
            if op.value is None:
                raise LettaInputError("Core memory blocks cannot be deleted through the store.")
            if not isinstance(op.value.get("value"), str):
                raise LettaInputError('A block is put as {"value": "<text>"}.')
        elif namespace == ARCHIVAL_NAMESPACE:
            if op.value is not None:
                raise LettaInputError(
                    "('letta', 'archival') lists the agent's own passages; only deletes "
                    "(value None) are allowed. Put items under your own namespace."
                )
        else:
            raise LettaInputError(f"The namespace root {RESERVED_ROOT!r} is reserved.")

    # ------------------------------------------------------------------ plans

    def _plan(self, op: Op) -> Plan[Result]:
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


# ---------------------------------------------------------------------- helpers
