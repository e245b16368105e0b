"""A ``RunnableWithMessageHistory`` turn's memory check, read alongside its history read.

Under ``RunnableWithMessageHistory`` a turn first reads the history, then runs the model,
whose memory check (``sync_memory="always"``) reads the agent's blocks before it sends.
Both reads belong to the chain's call, so the history starts the blocks read together
with its own read and hands the blocks to the model's turn through the history object
the chain gives both (``configurable["message_history"]``). The turn then checks its
prompt against blocks read after the chain's call began, as exact as its own read, one
round trip sooner.

The history starts the read only when the chain is reading it for a turn and the last
turn on the conversation in this process checked every turn, so cheaper modes and plain
reads (a UI showing the thread) cost nothing extra. A read that fails is dropped: the
model's turn then reads the blocks itself. Under ``langchain_letta.testing``'s cassettes
the two reads run one after the other (:func:`one_after_the_other`), so a re-recording
stores them in the same order every time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

from langchain_letta.state import MEMORY_CHECKS

__all__ = ["Prefetched", "one_after_the_other", "wanted"]

Read = Callable[[str], list[Any]]
AsyncRead = Callable[[str], Awaitable[list[Any]]]

_SEQUENTIAL = threading.Event()


def one_after_the_other() -> None:
    """Read the blocks after the history's own read instead of alongside it (cassettes)."""
    _SEQUENTIAL.set()


def wanted(history: object, conversation_id: str) -> bool:
    """Whether this read of ``history`` may read the agent's blocks alongside.

    True when ``RunnableWithMessageHistory`` reads it for the turn it is running and
    the last turn on the conversation in this process checked memory every turn (the
    history also skips its read after the turn: :meth:`Prefetched.read_follows_turn`).
    """
    configurable = (var_child_runnable_config.get() or {}).get("configurable") or {}
    return configurable.get("message_history") is history and MEMORY_CHECKS.checks_every_turn(
        conversation_id
    )


class Prefetched:
    """The blocks one history read fetched for the next turn on its conversation."""

    def __init__(self) -> None:
        self._blocks: tuple[str, list[Any]] | None = None
        self._turn_ran = False

    def read_follows_turn(self) -> bool:
        """Whether this read comes after a turn took the blocks (the chain's closing read).

        ``RunnableWithMessageHistory`` reads the history before the turn and again after
        it; only the first read is followed by a turn that needs the blocks.
        """
        ran, self._turn_ran = self._turn_ran, False
        return ran

    def start(self, read: Read, agent_id: str) -> Callable[[], list[Any]]:
        """Start ``read(agent_id)`` on a thread of its own; call the result to wait for it.

        One thread per read (no pool): safe in processes forked after import.
        """
        if _SEQUENTIAL.is_set():
            return lambda: read(agent_id)
        future: Future[list[Any]] = Future()

        def run() -> None:
            try:
                future.set_result(read(agent_id))
            except BaseException as error:
                future.set_exception(error)

        threading.Thread(target=run, name="langchain-letta-blocks", daemon=True).start()
        return future.result

    def astart(self, read: AsyncRead, agent_id: str) -> Callable[[], Awaitable[list[Any]]]:
        """Async twin of :meth:`start`: the read runs as a task alongside the caller's."""
        if _SEQUENTIAL.is_set():
            return lambda: read(agent_id)
        task = asyncio.ensure_future(read(agent_id))
        return lambda: task

    def keep(self, conversation_id: str, wait: Callable[[], list[Any]] | None) -> None:
        """Wait for a started read and keep its blocks for ``conversation_id``'s next turn."""
        self._blocks = None
        if wait is not None:
            try:
                self._blocks = (conversation_id, wait())
            except Exception:  # the turn reads the blocks itself
                return

    async def akeep(
        self, conversation_id: str, wait: Callable[[], Awaitable[list[Any]]] | None
    ) -> None:
        """Async twin of :meth:`keep`."""
        self._blocks = None
        if wait is not None:
            try:
                self._blocks = (conversation_id, await wait())
            except Exception:  # the turn reads the blocks itself
                return

    def take(self, conversation_id: str) -> list[Any] | None:
        """The kept blocks, once, if they were read for ``conversation_id``."""
        kept, self._blocks = self._blocks, None
        self._turn_ran = True
        return kept[1] if kept is not None and kept[0] == conversation_id else None
