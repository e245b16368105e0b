"""`LettaChatMessageHistory`: a chat-message history backed by a Letta conversation.

LangChain glue only: which conversation the history stands for is
`langchain_letta.history_conversation`, reading it `langchain_letta.thread_reads` (and
`langchain_letta.history_reading` for the conversion), writing
`langchain_letta.history_writes`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.connection import resolve_endpoint
from langchain_letta.conversation import Conversations, Order
from langchain_letta.errors import LettaInputError
from langchain_letta.history_conversation import HistoryConversation, check_names
from langchain_letta.history_writes import check_stored
from langchain_letta.memory import SyncMemory, check_mode
from langchain_letta.paging import CursorSemantics
from langchain_letta.sessions import SessionStore
from langchain_letta.thread_reads import ThreadReads

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
        cursor_semantics: "auto" | "absolute" | "relative"
            How the server reads `iter_messages` cursors (default `"auto"`: by host,
            `*.letta.com` relative, else absolute; see the README).

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
        Bad arguments (an `agent_id` that is no `agent-...` id, neither or a malformed
        `session_id` and `conversation_id`, a `page_size` below 1, an unknown
        `sync_memory`) raise `LettaInputError` at creation, before any I/O. A
        `conversation_id` of another agent raises `LettaForeignConversationError` at
        first use, a cursor that is malformed, unknown or of another conversation
        `LettaCursorError`.
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
        check_names(session_id, conversation_id, agent_id)
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
        self._cache_key = str(self._conversations.client.base_url)
        self._conversation = HistoryConversation(
            self._conversations, agent_id, session_id, conversation_id, session_store
        )
        self._reads = ThreadReads(self._conversations, self._conversation, self._cache_key)

    def __repr__(self) -> str:
        fields = {
            "session_id": self.session_id,
            "conversation_id": self._conversation.id,
            "agent_id": self.agent_id,
        }
        shown = ", ".join(f"{name}={value!r}" for name, value in fields.items() if value)
        return f"LettaChatMessageHistory({shown})"

    @property
    def conversation_id(self) -> str | None:
        """The conversation of this history (`None` for a session not created yet).

        A `conversation_id` given directly is checked to belong to `agent_id` on
        first use (one request per process).
        """
        return self._conversation.current()

    # ------------------------------------------------------------------ reading

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The thread as LangChain messages, oldest first (incremental after the first read)."""
        return self._reads.whole(self)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async twin of `messages`."""
        return await self._reads.awhole(self)

    def take_prefetched_blocks(self, conversation_id: str) -> list[Any] | None:
        """The agent's blocks this history's last read fetched for the turn that follows.

        `ChatLetta` takes them (once) under `RunnableWithMessageHistory` for its
        memory check instead of reading them again (see `langchain_letta.prefetch`).
        """
        return self._reads.take_blocks(conversation_id)

    def repeat_last_read(self) -> None:
        """Serve the last read once more on the next read.

        `ChatLetta` calls this after a turn run under `RunnableWithMessageHistory`,
        which reads the history again after the run to slice off the messages it
        loaded before the run; the held snapshot makes that slice exact and free.
        """
        self._reads.hold()

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
        if conversation_id is not None:
            yield from self._reads.lazily(self, conversation_id, order, page_size, after, before)

    async def aiter_messages(
        self,
        order: Order = "asc",
        page_size: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> AsyncIterator[BaseMessage]:
        """Async twin of `iter_messages`."""
        conversation_id = await self._conversation.acurrent()
        if conversation_id is not None:
            pages = self._reads.alazily(self, conversation_id, order, page_size, after, before)
            async for message in pages:
                yield message

    # ------------------------------------------------------------------ writing

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Record `messages`: a no-op for what Letta already stored, else an error.

        Raises:
            LettaHistoryWriteError: a message Letta did not store (nothing is written).

        """
        self._reads.release()
        check_stored(messages, self.conversation_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async twin of `add_messages`."""
        self._reads.release()
        check_stored(messages, await self._conversation.acurrent())

    def clear(self) -> None:
        """Start the session on a fresh, empty conversation; agent memory is untouched."""
        self._conversation.renew()
        self._reads.forget()

    async def aclear(self) -> None:
        """Async twin of `clear`."""
        await self._conversation.arenew()
        self._reads.forget()
