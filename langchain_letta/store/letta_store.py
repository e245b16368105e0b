"""`LettaStore`: a LangGraph `BaseStore` over a Letta agent's memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, Op, PutOp, Result, SearchOp
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.clients import for_running_loop, shared_clients
from langchain_letta.connection import Endpoint, resolve_api_key, resolve_endpoint
from langchain_letta.errors import LettaInputError
from langchain_letta.plans import Plan, arun, run
from langchain_letta.store.encoding import check_key, check_namespace, check_value
from langchain_letta.store.operations import Operations
from langchain_letta.store.rows import (
    ARCHIVAL_NAMESPACE,
    BLOCKS_NAMESPACE,
    RESERVED_ROOT,
    check_page,
)

__all__ = ["ARCHIVAL_NAMESPACE", "BLOCKS_NAMESPACE", "LettaStore"]

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
        self._operations = Operations(agent_id)
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
        return self._run(self._operations.attach_archival_tools())

    async def aattach_archival_tools(self) -> list[str]:
        """Async twin of `attach_archival_tools`."""
        return await self._arun(self._operations.attach_archival_tools())

    # ------------------------------------------------------------------ drivers

    def _plans(self, ops: Iterable[Op]) -> list[Plan[Result]]:
        """Check every op (raising before any request), then plan each one."""
        ops = list(ops)
        for op in ops:
            self._check(op)
        return [self._operations.plan(op) for op in ops]

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
