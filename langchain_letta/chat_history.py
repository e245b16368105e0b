"""`LettaChatMessageHistory`: a chat-message history backed by a Letta conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.connection import resolve_endpoint
from langchain_letta.conversation import Conversations, Order
from langchain_letta.errors import (
    LettaCursorError,
    LettaHistoryWriteError,
    LettaInputError,
    gone,
    letta_errors,
)
from langchain_letta.history_reading import (
    ReadThread,
    aread_new,
    ato_messages_lazily,
    is_prompt,
    read_new,
    to_messages_lazily,
)
from langchain_letta.memory import SyncMemory, check_mode
from langchain_letta.messages import (
    fold_messages,
)
from langchain_letta.paging import CursorSemantics, MessageListing
from langchain_letta.prefetch import Prefetched, wanted
from langchain_letta.sessions import (
    SessionResolver,
    SessionStore,
    acheck_owner,
    acquire,
    bind,
    check_agent_id,
    check_conversation_id,
    check_owner,
    check_session_id,
)
from langchain_letta.state import MEMORY_CHECKS, THREADS
from langchain_letta.time_order import aiter_thread, iter_thread
from langchain_letta.to_letta import not_stored

__all__ = ["LettaChatMessageHistory"]


class LettaChatMessageHistory(BaseChatMessageHistory):
    """Chat-message history stored in a Letta conversation, one conversation per session.

    The thread lives on the Letta server: `messages` reads it back as LangChain
    messages, each carrying its Letta `id` and `response_metadata` naming the
    conversation, with the agent's reasoning and own tool steps folded into its AI
    messages exactly as `ChatLetta` streams them. Reads are incremental: after the
    first read, this process fetches only what is new (one request per read, whatever
    the length of the thread). Creating a history does no I/O, so it is safe as a
    `RunnableWithMessageHistory` factory on sync and async paths.

    Setup:
        ```bash
        pip install -U langchain-letta
        export LETTA_BASE_URL="http://127.0.0.1:8283"
        ```

    Key init args:
        session_id: str | None
            The session key; its conversation is created on first write by `ChatLetta`
            and found again after restarts (the mapping lives on the Letta server).
        conversation_id: str | None
            A `conv-...` id to use directly instead of a session key.
        agent_id: str
            The agent the conversation belongs to.
        include_system: bool
            Include the conversation's compiled system prompt (default `False`). Its
            memory blocks are the agent's current ones: a read first checks them as
            `sync_memory` says and recompiles the prompt if they changed.
        sync_memory: "always" | float | "process" | "never"
            As for `ChatLetta` (default `"always"`); used only with `include_system`.
        page_size: int
            Messages per request when reading (default 100).

    Connection args:
        `base_url`, `api_key`, `timeout`, `max_retries`, `client`,
        `async_client`, `session_store`: as for `ChatLetta`.

    With RunnableWithMessageHistory:
        ```python
        from langchain_core.runnables.history import RunnableWithMessageHistory
        from langchain_letta import ChatLetta, LettaChatMessageHistory

        model = ChatLetta(agent_id=AGENT_ID)
        chain = RunnableWithMessageHistory(
            model, lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=AGENT_ID)
        )
        chain.invoke("hello", config={"configurable": {"session_id": "bob"}})
        ```

        After N turns the conversation holds exactly N user and N assistant messages:
        `ChatLetta` sends only what Letta has not stored, and `add_messages` knows
        the turns Letta already stored.

    Read and page:
        ```python
        history = LettaChatMessageHistory(session_id="bob", agent_id=AGENT_ID)
        history.messages                                  # the whole thread
        for message in history.iter_messages(order="desc", page_size=50):
            ...                                           # newest first, lazily
        history.iter_messages(after=some_message_id)      # later than that message
        ```

    Writing:
        Letta stores a message only by running the agent on it. `add_messages` is a
        no-op for turns Letta already stored (the usual case); a message Letta did not
        store raises `LettaHistoryWriteError` and nothing is written, so nothing is lost
        silently. To add a user turn, send it with `ChatLetta`.

    Compaction:
        The summary a compaction leaves is a `SystemMessage` with
        `response_metadata["letta_message_type"] == "system_alert"`, in `messages` and
        `iter_messages` alike, where it was made. A running history notices it by that
        summary and from then on reads the thread whole, in the order its messages were
        made, exactly as a fresh process does (Letta 0.16.8 lists a
        compacted thread out of order and its cursors skip messages: see the README).

    Clearing:
        `clear()` starts the session on a fresh, empty conversation and deletes the old
        one, so other processes and replicas that still have the session cached follow
        it at their next request. It never touches the agent's memory blocks.

    Errors:
        `agent_id` is required; a `conversation_id` of another agent raises
        `LettaForeignConversationError` at first use, a cursor that is malformed,
        unknown or of another conversation `LettaCursorError`.
    """

    def __init__(
        self,
        session_id: str | None = None,
        *,
        agent_id: str,
        conversation_id: str | None = None,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        client: Letta | None = None,
        async_client: AsyncLetta | None = None,
        session_store: SessionStore | None = None,
        include_system: bool = False,
        page_size: int = 100,
        cursor_semantics: CursorSemantics = "auto",
        sync_memory: SyncMemory = "always",
    ) -> None:
        if session_id is None and conversation_id is None:
            raise LettaInputError("Give a session_id or a conversation_id.")
        if session_id is not None:
            check_session_id(session_id)
        if conversation_id is not None:
            check_conversation_id(conversation_id)
        check_agent_id(agent_id)
        if not isinstance(page_size, int) or page_size < 1:
            raise LettaInputError("page_size must be at least 1.")
        self.session_id = session_id
        self.agent_id = agent_id
        self.include_system = include_system
        self.sync_memory = check_mode(sync_memory)
        self.page_size = page_size
        self.cursor_semantics: CursorSemantics = cursor_semantics
        endpoint = resolve_endpoint(base_url, api_key)
        self.base_url = endpoint.url
        self._conversations = Conversations.connect(
            endpoint,
            timeout=timeout,
            max_retries=max_retries,
            busy_timeout=0,
            client=client,
            async_client=async_client,
        )
        client = self._conversations.client
        async_client = self._conversations.given_async_client
        self._listing = MessageListing(client, async_client)
        self._cache_key = str(client.base_url)
        self._resolver = SessionResolver(client, agent_id, session_store, async_client=async_client)
        self._conversation_id = conversation_id
        self._owner_checked = False
        self._last_read: list[BaseMessage] | None = None
        self._serve_last_read = False
        self._prefetched = Prefetched()

    def __repr__(self) -> str:
        fields = {
            "session_id": self.session_id,
            "conversation_id": self._conversation_id,
            "agent_id": self.agent_id,
        }
        shown = ", ".join(f"{name}={value!r}" for name, value in fields.items() if value)
        return f"LettaChatMessageHistory({shown})"

    # ------------------------------------------------------------------ conversation

    @property
    def conversation_id(self) -> str | None:
        """The conversation of this history (`None` for a session not created yet).

        A `conversation_id` given directly is checked to belong to `agent_id` on
        first use (one request per process).
        """
        if self.session_id is not None:
            cached = self._resolver.cached(self.session_id)
            if cached is not None:  # another history or model may have moved the session
                self._conversation_id = cached
            elif self._conversation_id is None:
                self._conversation_id = self._resolver.resolve(self.session_id, create=False)
        elif self._conversation_id is not None and not self._owner_checked:
            check_owner(self._conversations.client, self.agent_id, self._conversation_id)
            self._owner_checked = True
        return self._conversation_id

    async def _aconversation_id(self) -> str | None:
        if self.session_id is not None:
            cached = self._resolver.cached(self.session_id)
            if cached is not None:
                self._conversation_id = cached
            elif self._conversation_id is None:
                self._conversation_id = await self._resolver.aresolve(self.session_id, create=False)
        elif self._conversation_id is not None and not self._owner_checked:
            await acheck_owner(
                self._conversations.async_client, self.agent_id, self._conversation_id
            )
            self._owner_checked = True
        return self._conversation_id

    def _gone(self, conversation_id: str, error: BaseException) -> None:
        """The conversation read so far is gone: follow the session once, else raise."""
        self._conversation_id = self._resolver.refresh(
            self._session_of_gone(conversation_id, error), conversation_id, create=False
        )

    async def _agone(self, conversation_id: str, error: BaseException) -> None:
        """Async twin of `_gone`."""
        self._conversation_id = await self._resolver.arefresh(
            self._session_of_gone(conversation_id, error), conversation_id, create=False
        )

    def _session_of_gone(self, conversation_id: str, error: BaseException) -> str:
        """Forget what was read of a gone conversation; the session to follow, else raise."""
        THREADS.pop((self._cache_key, conversation_id), None)
        self._last_read = None
        if self.session_id is None:
            raise gone(f"Conversation {conversation_id} was deleted.") from error
        return self.session_id

    # ------------------------------------------------------------------ reading

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The thread as LangChain messages, oldest first (incremental after the first read)."""
        closing = self._prefetched.read_follows_turn()
        if self._serve_last_read and self._last_read is not None:
            self._serve_last_read = False
            return self._last_read
        for attempt in range(2):
            conversation_id = self.conversation_id
            if conversation_id is None:
                return []
            if self.include_system and self._prompt_recompiled(conversation_id):
                THREADS.pop((self._cache_key, conversation_id), None)  # its system message changed
            thread = THREADS.obtain((self._cache_key, conversation_id), ReadThread)
            prefetch = None
            if not closing and wanted(self, conversation_id):  # the turn checks memory next
                read = self._conversations.read_blocks
                prefetch = self._prefetched.start(read, self.agent_id)
            try:
                with thread.lock:
                    new_items = read_new(thread, self._listing, conversation_id, self.page_size)
                    return self._extended(thread, conversation_id, new_items)
            except LettaCursorError as error:  # our own cursor is gone with its conversation
                if attempt:
                    raise
                self._gone(conversation_id, error)
            finally:
                self._prefetched.keep(conversation_id, prefetch)
        return []

    async def aget_messages(self) -> list[BaseMessage]:
        """Async twin of `messages`."""
        closing = self._prefetched.read_follows_turn()
        if self._serve_last_read and self._last_read is not None:
            self._serve_last_read = False
            return self._last_read
        for attempt in range(2):
            conversation_id = await self._aconversation_id()
            if conversation_id is None:
                return []
            if self.include_system and await self._aprompt_recompiled(conversation_id):
                THREADS.pop((self._cache_key, conversation_id), None)
            thread = THREADS.obtain((self._cache_key, conversation_id), ReadThread)
            aprefetch = None
            if not closing and wanted(self, conversation_id):  # the turn checks memory next
                aprefetch = self._prefetched.astart(self._conversations.aread_blocks, self.agent_id)
            await acquire(thread.lock)
            try:
                new_items = await aread_new(thread, self._listing, conversation_id, self.page_size)
                return self._extended(thread, conversation_id, new_items)
            except LettaCursorError as error:
                if attempt:
                    raise
                await self._agone(conversation_id, error)
            finally:
                thread.lock.release()
                await self._prefetched.akeep(conversation_id, aprefetch)
        return []

    def _extended(
        self, thread: ReadThread, conversation_id: str, new_items: list[Any]
    ) -> list[BaseMessage]:
        """The whole thread as messages, once `new_items` are added to what was read."""
        convert = self._converter(conversation_id, include_system=True)
        messages = thread.extend(new_items, convert)
        THREADS.reweigh((self._cache_key, conversation_id))
        return self._remember_read(messages)

    def _prompt_recompiled(self, conversation_id: str) -> bool:
        """Bring the thread's system prompt in step with the agent's blocks (`sync_memory`)."""
        with letta_errors():
            return self._conversations.sync_memory(self.sync_memory, self.agent_id, conversation_id)

    async def _aprompt_recompiled(self, conversation_id: str) -> bool:
        """Async twin of `_prompt_recompiled`."""
        with letta_errors():
            return await self._conversations.async_sync_memory(
                self.sync_memory, self.agent_id, conversation_id
            )

    def _remember_read(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """Remember this read as the last one (see `repeat_last_read`) and return it."""
        if not self.include_system:
            messages = [message for message in messages if not is_prompt(message)]
        self._last_read = messages
        return messages

    def take_prefetched_blocks(self, conversation_id: str) -> list[Any] | None:
        """The agent's blocks this history's last read fetched for the turn that follows.

        `ChatLetta` takes them (once) under `RunnableWithMessageHistory` for its
        memory check instead of reading them again (see `langchain_letta.prefetch`).
        """
        return self._prefetched.take(conversation_id)

    def repeat_last_read(self) -> None:
        """Serve the last read once more on the next read.

        `ChatLetta` calls this after a turn run under `RunnableWithMessageHistory`,
        which reads the history again after the run to slice off the messages it
        loaded before the run; the held snapshot makes that slice exact and free.
        """
        self._serve_last_read = self._last_read is not None

    def iter_messages(
        self,
        order: Order = "asc",
        page_size: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> Iterator[BaseMessage]:
        """Lazily yield the thread's messages, one page per request.

        Args:
            order: `"asc"` oldest first, `"desc"` newest first.
            page_size: stored messages per request (default: the history's page size).
            after: only messages later in the thread than this message id.
            before: only messages earlier in the thread than this message id.

        """
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        items = iter_thread(
            self._listing,
            conversation_id,
            order,
            page_size or self.page_size,
            after,
            before,
            semantics=self.cursor_semantics,
        )
        yield from to_messages_lazily(
            items, order, self._converter(conversation_id, include_system=self.include_system)
        )

    async def aiter_messages(
        self,
        order: Order = "asc",
        page_size: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> AsyncIterator[BaseMessage]:
        """Async twin of `iter_messages`."""
        conversation_id = await self._aconversation_id()
        if conversation_id is None:
            return
        items = aiter_thread(
            self._listing,
            conversation_id,
            order,
            page_size or self.page_size,
            after,
            before,
            semantics=self.cursor_semantics,
        )
        convert = self._converter(conversation_id, include_system=self.include_system)
        async for message in ato_messages_lazily(items, order, convert):
            yield message

    def _converter(
        self, conversation_id: str, *, include_system: bool
    ) -> Callable[[list[Any]], list[BaseMessage]]:
        """Converts items of this conversation into LangChain messages."""

        def convert(items: list[Any]) -> list[BaseMessage]:
            return fold_messages(
                items,
                conversation_id=conversation_id,
                agent_id=self.agent_id,
                include_system=include_system,
            )

        return convert

    # ------------------------------------------------------------------ writing

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Record `messages`: a no-op for what Letta already stored, else an error.

        Raises:
            LettaHistoryWriteError: a message Letta did not store (nothing is written).

        """
        self._serve_last_read = False
        self._check_stored(messages, self.conversation_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async twin of `add_messages`."""
        self._serve_last_read = False
        self._check_stored(messages, await self._aconversation_id())

    def _check_stored(self, messages: Sequence[BaseMessage], conversation_id: str | None) -> None:
        unstored = not_stored(messages, conversation_id)
        if unstored:
            kinds = ", ".join(sorted({message.type for message in unstored}))
            raise LettaHistoryWriteError(
                f"{len(unstored)} message(s) ({kinds}) are not stored in the Letta "
                "conversation, and Letta stores a message only by running the agent on it. "
                "Send user turns through ChatLetta; nothing was written."
            )

    def clear(self) -> None:
        """Start the session on a fresh, empty conversation; agent memory is untouched."""
        self._use_conversation(self._fresh_conversation())

    async def aclear(self) -> None:
        """Async twin of `clear`."""
        self._use_conversation(await self._afresh_conversation())

    def _fresh_conversation(self) -> str:
        if self.session_id is not None:
            return self._resolver.renew(self.session_id)
        with letta_errors():
            created = self._conversations.client.conversations.create(agent_id=self.agent_id)
        return self._bound(created.id)

    async def _afresh_conversation(self) -> str:
        if self.session_id is not None:
            return await self._resolver.arenew(self.session_id)
        client = self._conversations.async_client
        with letta_errors():
            created = await client.conversations.create(agent_id=self.agent_id)
        return self._bound(created.id)

    def _bound(self, conversation_id: str) -> str:
        """A conversation this history just created: its blocks are current, it is the agent's."""
        MEMORY_CHECKS.created(self.agent_id, conversation_id)
        bind(self._cache_key, conversation_id, self.agent_id)
        return str(conversation_id)

    def _use_conversation(self, conversation_id: str) -> None:
        self._conversation_id = conversation_id
        self._owner_checked = True
        self._last_read = None
        self._serve_last_read = False
