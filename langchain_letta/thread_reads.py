"""How a history reads its thread from the server: whole and incremental, or page by page.

A whole read (`LettaChatMessageHistory.messages`) fetches only what this process has
not read of the conversation yet (one request when warm) into its `ReadThread` in
`state.THREADS`; a compacted thread is read whole, in creation order
(`langchain_letta.time_order`). Around it:

- with `include_system`, the prompt is first brought in step with the agent's memory
  blocks (`sync_memory`), and a recompiled prompt starts the thread's cache over;
- under `RunnableWithMessageHistory` the agent's blocks are read alongside for the turn
  that follows (`langchain_letta.prefetch`), and the chain's closing read is served the
  read held from before the turn (`hold`);
- a cursor gone with its conversation (cleared elsewhere) follows the session once.

A lazy read (`iter_messages`) lists the thread page by page and converts it as it comes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from langchain_letta.conversation import Conversations, Order
from langchain_letta.errors import LettaCursorError, letta_errors
from langchain_letta.history_conversation import HistoryConversation
from langchain_letta.history_reading import (
    ReadThread,
    ato_messages_lazily,
    converter,
    to_messages_lazily,
)
from langchain_letta.memory import SyncMemory
from langchain_letta.paging import (
    CursorSemantics,
    MessageListing,
    aiter_items,
    aiter_newer,
    iter_items,
    iter_newer,
)
from langchain_letta.prefetch import Prefetched, wanted
from langchain_letta.sessions import acquire
from langchain_letta.state import THREADS
from langchain_letta.time_order import (
    PROBE,
    aiter_thread,
    aread_whole,
    compacted,
    iter_thread,
    read_whole,
)

__all__ = ["ReadOptions", "ThreadReads", "aread_new", "read_new"]


class ReadOptions(Protocol):
    """The settings of the history a read is for, as they are at the time of the read."""

    agent_id: str
    include_system: bool
    sync_memory: SyncMemory
    page_size: int
    cursor_semantics: CursorSemantics


class ThreadReads:
    """The reads of one history's conversation.

    Args:
        conversations: the history's letta-clients.
        conversation: the history's conversation.
        cache_key: the server's URL, which keys this process's threads.

    """

    def __init__(
        self, conversations: Conversations, conversation: HistoryConversation, cache_key: str
    ) -> None:
        self._conversations = conversations
        self._conversation = conversation
        self._cache_key = cache_key
        self._listing = MessageListing(conversations.client, conversations.given_async_client)
        self._last: list[BaseMessage] | None = None
        self._hold = False
        self._prefetched = Prefetched()

    # ------------------------------------------------------------------ whole

    def whole(self, history: ReadOptions) -> list[BaseMessage]:
        """The thread as messages, oldest first (incremental after the first read)."""
        closing, held = self._start()
        if held is not None:
            return held
        for attempt in range(2):
            conversation_id = self._conversation.current()
            if conversation_id is None:
                return []
            recompiled = history.include_system and self._recompiled(history, conversation_id)
            thread = self._thread(conversation_id, recompiled)
            prefetch = None
            if not closing and wanted(history, conversation_id):  # the turn checks memory next
                prefetch = self._prefetched.start(self._conversations.read_blocks, history.agent_id)
            try:
                with thread.lock:
                    new_items = read_new(thread, self._listing, conversation_id, history.page_size)
                    return self._extended(history, thread, conversation_id, new_items)
            except LettaCursorError as error:  # our own cursor is gone with its conversation
                if attempt:
                    raise
                self._forget_thread(conversation_id)
                self._conversation.follow(conversation_id, error)
            finally:
                self._prefetched.keep(conversation_id, prefetch)
        return []

    async def awhole(self, history: ReadOptions) -> list[BaseMessage]:
        """Async twin of `whole`."""
        closing, held = self._start()
        if held is not None:
            return held
        for attempt in range(2):
            conversation_id = await self._conversation.acurrent()
            if conversation_id is None:
                return []
            recompiled = history.include_system and await self._arecompiled(
                history, conversation_id
            )
            thread = self._thread(conversation_id, recompiled)
            aprefetch = None
            if not closing and wanted(history, conversation_id):  # the turn checks memory next
                read = self._conversations.aread_blocks
                aprefetch = self._prefetched.astart(read, history.agent_id)
            await acquire(thread.lock)
            try:
                listing, page_size = self._listing, history.page_size
                new_items = await aread_new(thread, listing, conversation_id, page_size)
                return self._extended(history, thread, conversation_id, new_items)
            except LettaCursorError as error:
                if attempt:
                    raise
                self._forget_thread(conversation_id)
                await self._conversation.afollow(conversation_id, error)
            finally:
                thread.lock.release()
                await self._prefetched.akeep(conversation_id, aprefetch)
        return []

    def _start(self) -> tuple[bool, list[BaseMessage] | None]:
        """Whether this read follows a turn (the chain's closing read), and the held read."""
        closing = self._prefetched.read_follows_turn()
        if self._hold and self._last is not None:
            self._hold = False
            return closing, self._last
        return closing, None

    def _recompiled(self, history: ReadOptions, conversation_id: str) -> bool:
        """Bring the thread's system prompt in step with the agent's blocks (`sync_memory`)."""
        with letta_errors():
            return self._conversations.sync_memory(
                history.sync_memory, history.agent_id, conversation_id
            )

    async def _arecompiled(self, history: ReadOptions, conversation_id: str) -> bool:
        """Async twin of `_recompiled`."""
        with letta_errors():
            return await self._conversations.async_sync_memory(
                history.sync_memory, history.agent_id, conversation_id
            )

    def _thread(self, conversation_id: str, recompiled: bool) -> ReadThread:
        """What this process read of the conversation (nothing once its prompt changed)."""
        if recompiled:
            THREADS.pop((self._cache_key, conversation_id), None)
        thread: ReadThread = THREADS.obtain((self._cache_key, conversation_id), ReadThread)
        return thread

    def _forget_thread(self, conversation_id: str) -> None:
        THREADS.pop((self._cache_key, conversation_id), None)
        self._last = None

    def _extended(
        self, history: ReadOptions, thread: ReadThread, conversation_id: str, new_items: list[Any]
    ) -> list[BaseMessage]:
        """The whole thread once `new_items` are added to what was read; kept as the last."""
        messages = thread.extend(
            new_items,
            converter(history.agent_id, conversation_id, include_system=True),
            include_system=history.include_system,
        )
        THREADS.reweigh((self._cache_key, conversation_id))
        self._last = messages
        return messages

    # ------------------------------------------------------------------ held read, blocks

    def hold(self) -> None:
        """Serve the last read once more, on the next read."""
        self._hold = self._last is not None

    def release(self) -> None:
        """Serve no held read (a write came in between)."""
        self._hold = False

    def forget(self) -> None:
        """Forget the last read (the history moved to another conversation)."""
        self._last = None
        self._hold = False

    def take_blocks(self, conversation_id: str) -> list[Any] | None:
        """The agent's blocks the last read fetched for `conversation_id`'s turn, once."""
        return self._prefetched.take(conversation_id)

    # ------------------------------------------------------------------ lazy

    def lazily(
        self,
        history: ReadOptions,
        conversation_id: str,
        order: Order,
        page_size: int | None,
        after: str | None,
        before: str | None,
    ) -> Iterator[BaseMessage]:
        """The thread's messages in `order`, one page per request (`iter_messages`)."""
        items = iter_thread(
            self._listing,
            conversation_id,
            order,
            page_size or history.page_size,
            after,
            before,
            semantics=history.cursor_semantics,
        )
        include_system = history.include_system
        convert = converter(history.agent_id, conversation_id, include_system=include_system)
        return to_messages_lazily(items, order, convert)

    def alazily(
        self,
        history: ReadOptions,
        conversation_id: str,
        order: Order,
        page_size: int | None,
        after: str | None,
        before: str | None,
    ) -> AsyncIterator[BaseMessage]:
        """Async twin of `lazily`."""
        items = aiter_thread(
            self._listing,
            conversation_id,
            order,
            page_size or history.page_size,
            after,
            before,
            semantics=history.cursor_semantics,
        )
        include_system = history.include_system
        convert = converter(history.agent_id, conversation_id, include_system=include_system)
        return ato_messages_lazily(items, order, convert)


def read_new(
    thread: ReadThread, listing: MessageListing, conversation_id: str, page_size: int
) -> list[Any]:
    """The conversation's items that `thread` has not read yet (one request when warm).

    On a first read that is the whole thread as the server lists it, else what was
    created after the last item read. A compacted thread is read whole, in creation
    order (see `langchain_letta.time_order`).
    """
    if thread.last_id is not None and not thread.compacted:
        new_items = list(iter_newer(listing, conversation_id, thread.last_id, page_size))
        if not compacted(new_items):
            return new_items
    elif thread.last_id is None:
        first = listing.page(conversation_id, order="asc", limit=max(page_size, PROBE))
        if not compacted(first):
            return list(iter_items(listing, conversation_id, "asc", page_size, first_page=first))
    thread.start_over()
    return read_whole(listing, conversation_id)


async def aread_new(
    thread: ReadThread, listing: MessageListing, conversation_id: str, page_size: int
) -> list[Any]:
    """Async twin of `read_new`."""
    if thread.last_id is not None and not thread.compacted:
        newer = aiter_newer(listing, conversation_id, thread.last_id, page_size)
        new_items = [item async for item in newer]
        if not compacted(new_items):
            return new_items
    elif thread.last_id is None:
        first = await listing.apage(conversation_id, order="asc", limit=max(page_size, PROBE))
        if not compacted(first):
            whole = aiter_items(listing, conversation_id, "asc", page_size, first_page=first)
            return [item async for item in whole]
    thread.start_over()
    return await aread_whole(listing, conversation_id)
