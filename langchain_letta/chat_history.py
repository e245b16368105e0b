"""``LettaChatMessageHistory``: a chat-message history backed by a Letta conversation."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.clients import shared_clients
from langchain_letta.connection import resolve_endpoint
from langchain_letta.conversation import Conversations, Order
from langchain_letta.errors import (
    LettaCursorError,
    LettaHistoryWriteError,
    LettaInputError,
    LettaNotFoundError,
    letta_errors,
)
from langchain_letta.memory import SyncMemory, check_mode
from langchain_letta.messages import (
    AGENT_SIDE,
    SYSTEM_ALERT,
    fold_messages,
    is_stored_in,
    system_alert,
)
from langchain_letta.paging import (
    CursorSemantics,
    MessageListing,
    aiter_items,
    aiter_newer,
    iter_items,
    iter_newer,
)
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

__all__ = ["LettaChatMessageHistory"]


@dataclass
class _Thread:
    """What this process has read of one conversation, already folded.

    ``settled`` holds the messages of every item before the newest user (or system,
    or tool-result) item; ``tail`` holds the items from there on, since the agent's turn
    after it may still grow. A read folds only the tail and what is new.
    """

    settled: list[BaseMessage] = field(default_factory=list)
    tail: list[Any] = field(default_factory=list)
    last_id: str | None = None
    size: int = 0
    client_returns: set[str] = field(default_factory=set)
    compacted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_compaction(self, new_items: list[Any]) -> None:
        """Start over if the conversation was compacted (now or before): read it whole.

        A compaction on Letta 0.16.8 renumbers the positions the conversation's listing
        orders by, so a compacted thread is read whole each time, exactly as a fresh
        process reads it. The summary a compaction leaves is how it is noticed.
        """
        if self.compacted or any(_is_alert(item) for item in new_items):
            self.settled, self.tail, self.last_id, self.size = [], [], None, 0
            self.client_returns = set()

    def extend(
        self, new_items: list[Any], fold: Callable[[list[Any]], list[BaseMessage]]
    ) -> list[BaseMessage]:
        """Add newly read items; return the whole thread as messages."""
        items = self.tail + [
            item for item in new_items if not _is_echo(item, self.client_returns, note=True)
        ]
        cut = max(
            (i for i, item in enumerate(items) if item.message_type not in AGENT_SIDE), default=0
        )
        if cut > 0:
            self.settled += fold(items[:cut])
        self.tail = items[cut:]
        self.size += len(new_items)
        if new_items:
            self.last_id = new_items[-1].id
        return self.settled + fold(self.tail)


class LettaChatMessageHistory(BaseChatMessageHistory):
    """Chat-message history stored in a Letta conversation, one conversation per session.

    The thread lives on the Letta server: ``messages`` reads it back as LangChain
    messages, each carrying its Letta ``id`` and ``response_metadata`` naming the
    conversation, with the agent's reasoning and own tool steps folded into its AI
    messages exactly as ``ChatLetta`` streams them. Reads are incremental: after the
    first read, this process fetches only what is new (one request per read, whatever
    the length of the thread). Creating a history does no I/O, so it is safe as a
    ``RunnableWithMessageHistory`` factory on sync and async paths.

    Setup:
        .. code-block:: bash

            pip install -U langchain-letta
            export LETTA_BASE_URL="http://127.0.0.1:8283"

    Key init args:
        session_id: str | None
            The session key; its conversation is created on first write by ``ChatLetta``
            and found again after restarts (the mapping lives on the Letta server).
        conversation_id: str | None
            A ``conv-...`` id to use directly instead of a session key.
        agent_id: str
            The agent the conversation belongs to.
        include_system: bool
            Include the conversation's compiled system prompt (default ``False``). Its
            memory blocks are the agent's current ones: a read first checks them as
            ``sync_memory`` says and recompiles the prompt if they changed.
        sync_memory: "always" | float | "process" | "never"
            As for ``ChatLetta`` (default ``"always"``); used only with ``include_system``.
        page_size: int
            Messages per request when reading (default 100).

    Connection args:
        ``base_url``, ``api_key``, ``timeout``, ``max_retries``, ``client``,
        ``async_client``, ``session_store``: as for ``ChatLetta``.

    With RunnableWithMessageHistory:
        .. code-block:: python

            from langchain_core.runnables.history import RunnableWithMessageHistory
            from langchain_letta import ChatLetta, LettaChatMessageHistory

            model = ChatLetta(agent_id=AGENT_ID)
            chain = RunnableWithMessageHistory(
                model, lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=AGENT_ID)
            )
            chain.invoke("hello", config={"configurable": {"session_id": "bob"}})

        After N turns the conversation holds exactly N user and N assistant messages:
        ``ChatLetta`` sends only what Letta has not stored, and ``add_messages`` knows
        the turns Letta already stored.

    Read and page:
        .. code-block:: python

            history = LettaChatMessageHistory(session_id="bob", agent_id=AGENT_ID)
            history.messages                                  # the whole thread
            for message in history.iter_messages(order="desc", page_size=50):
                ...                                           # newest first, lazily
            history.iter_messages(after=some_message_id)      # later than that message

    Writing:
        Letta stores a message only by running the agent on it. ``add_messages`` is a
        no-op for turns Letta already stored (the usual case); a message Letta did not
        store raises :class:`~langchain_letta.errors.LettaHistoryWriteError` and nothing
        is written, so nothing is lost silently. To add a user turn, send it with
        ``ChatLetta``.

    Compaction:
        When Letta compacts a conversation (explicitly, or on its own when the context
        window fills), the summary it leaves is a ``SystemMessage`` with
        ``response_metadata["letta_message_type"] == "system_alert"``, in ``messages``
        and ``iter_messages`` alike, at the point of the thread where it was made.
        A running history notices a compaction by its summary (it reads what is new by
        creation time, which a compaction leaves in order) and from then on reads the
        thread whole, so it reads exactly what a fresh process reads. Letta 0.16.8
        lists a compacted thread out of order (see the README's limitations);
        ``messages`` and ``iter_messages`` show that same order.

    Clearing:
        ``clear()`` starts the session on a fresh, empty conversation and deletes the
        old one, so other processes and replicas that still have the session cached
        follow it at their next request (a turn goes to the new conversation, a read
        reads it). It never touches the agent's memory blocks (shared by all sessions).

    Errors:
        ``agent_id`` is required; a ``conversation_id`` of another agent raises
        :class:`~langchain_letta.errors.LettaForeignConversationError` at first use,
        a cursor that is malformed, unknown or of another conversation
        :class:`~langchain_letta.errors.LettaCursorError`.
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
        client, async_client = shared_clients(
            endpoint,
            timeout=timeout,
            max_retries=max_retries,
            client=client,
            async_client=async_client,
        )
        self._conversations = Conversations(client, async_client, busy_timeout=0)
        self._listing = MessageListing(client, async_client)
        self._cache_key = str(client.base_url)
        self._resolver = SessionResolver(client, agent_id, session_store, async_client=async_client)
        self._conversation_id = conversation_id
        self._owner_checked = False
        self._snapshot: list[BaseMessage] | None = None
        self._hold_snapshot = False
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
        """The conversation of this history (``None`` for a session not created yet).

        A ``conversation_id`` given directly is checked to belong to ``agent_id`` on
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
        """Async twin of :meth:`_gone`."""
        self._conversation_id = await self._resolver.arefresh(
            self._session_of_gone(conversation_id, error), conversation_id, create=False
        )

    def _session_of_gone(self, conversation_id: str, error: BaseException) -> str:
        """Forget what was read of a gone conversation; the session to follow, else raise."""
        THREADS.pop((self._cache_key, conversation_id), None)
        self._snapshot = None
        if self.session_id is None:
            raise LettaNotFoundError(
                f"Conversation {conversation_id} was deleted.",
                response=_gone_response(),
                body=None,
            ) from error
        return self.session_id

    # ------------------------------------------------------------------ reading

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The thread as LangChain messages, oldest first (incremental after the first read)."""
        closing = self._prefetched.read_follows_turn()
        if self._hold_snapshot and self._snapshot is not None:
            self._hold_snapshot = False
            return self._snapshot
        for attempt in range(2):
            conversation_id = self.conversation_id
            if conversation_id is None:
                return []
            if self.include_system and self._prompt_recompiled(conversation_id):
                THREADS.pop((self._cache_key, conversation_id), None)  # its system message changed
            thread = THREADS.obtain((self._cache_key, conversation_id), _Thread)
            prefetch = None
            if not closing and wanted(self, conversation_id):  # the turn checks memory next
                read = self._conversations.read_blocks
                prefetch = self._prefetched.start(read, self.agent_id)
            try:
                with thread.lock:
                    if thread.last_id is not None:  # what was created since the last read
                        new_items = list(
                            iter_newer(
                                self._listing, conversation_id, thread.last_id, self.page_size
                            )
                        )
                        thread.check_compaction(new_items)
                    if thread.last_id is None:  # the whole thread, as the server lists it
                        new_items = list(
                            iter_items(self._listing, conversation_id, "asc", self.page_size)
                        )
                        thread.compacted = any(_is_alert(item) for item in new_items)
                    fold = self._folder(conversation_id, include_system=True)
                    folded = thread.extend(new_items, fold)
                    THREADS.reweigh((self._cache_key, conversation_id))
                    return self._keep(folded)
            except LettaCursorError as error:  # our own cursor is gone with its conversation
                if attempt:
                    raise
                self._gone(conversation_id, error)
            finally:
                self._prefetched.keep(conversation_id, prefetch)
        return []

    async def aget_messages(self) -> list[BaseMessage]:
        """Async twin of :attr:`messages`."""
        closing = self._prefetched.read_follows_turn()
        if self._hold_snapshot and self._snapshot is not None:
            self._hold_snapshot = False
            return self._snapshot
        for attempt in range(2):
            conversation_id = await self._aconversation_id()
            if conversation_id is None:
                return []
            if self.include_system and await self._aprompt_recompiled(conversation_id):
                THREADS.pop((self._cache_key, conversation_id), None)
            thread = THREADS.obtain((self._cache_key, conversation_id), _Thread)
            aprefetch = None
            if not closing and wanted(self, conversation_id):  # the turn checks memory next
                aprefetch = self._prefetched.astart(self._conversations.aread_blocks, self.agent_id)
            await acquire(thread.lock)
            try:
                if thread.last_id is not None:
                    new_items = [
                        item
                        async for item in aiter_newer(
                            self._listing, conversation_id, thread.last_id, self.page_size
                        )
                    ]
                    thread.check_compaction(new_items)
                if thread.last_id is None:
                    new_items = [
                        item
                        async for item in aiter_items(
                            self._listing, conversation_id, "asc", self.page_size
                        )
                    ]
                    thread.compacted = any(_is_alert(item) for item in new_items)
                fold = self._folder(conversation_id, include_system=True)
                folded = thread.extend(new_items, fold)
                THREADS.reweigh((self._cache_key, conversation_id))
                return self._keep(folded)
            except LettaCursorError as error:
                if attempt:
                    raise
                await self._agone(conversation_id, error)
            finally:
                thread.lock.release()
                await self._prefetched.akeep(conversation_id, aprefetch)
        return []

    def _prompt_recompiled(self, conversation_id: str) -> bool:
        """Bring the thread's system prompt in step with the agent's blocks (``sync_memory``)."""
        with letta_errors():
            return self._conversations.sync_memory(self.sync_memory, self.agent_id, conversation_id)

    async def _aprompt_recompiled(self, conversation_id: str) -> bool:
        """Async twin of :meth:`_prompt_recompiled`."""
        with letta_errors():
            return await self._conversations.async_sync_memory(
                self.sync_memory, self.agent_id, conversation_id
            )

    def _keep(self, folded: list[BaseMessage]) -> list[BaseMessage]:
        """Remember this read as the snapshot (see :meth:`hold_snapshot`) and return it."""
        if not self.include_system:
            folded = [message for message in folded if not _is_prompt(message)]
        self._snapshot = folded
        return folded

    def take_prefetched_blocks(self, conversation_id: str) -> list[Any] | None:
        """The agent's blocks this history's last read fetched for the turn that follows.

        ``ChatLetta`` takes them (once) under ``RunnableWithMessageHistory`` for its
        memory check instead of reading them again (see :mod:`langchain_letta.prefetch`).
        """
        return self._prefetched.take(conversation_id)

    def hold_snapshot(self) -> None:
        """Serve the last read once more on the next read.

        ``ChatLetta`` calls this after a turn run under ``RunnableWithMessageHistory``,
        which reads the history again after the run to slice off the messages it
        loaded before the run; the held snapshot makes that slice exact and free.
        """
        self._hold_snapshot = self._snapshot is not None

    def iter_messages(
        self,
        order: Order = "asc",
        page_size: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> Iterator[BaseMessage]:
        """Lazily yield the thread's messages, one page per request.

        Args:
            order: ``"asc"`` oldest first, ``"desc"`` newest first.
            page_size: stored messages per request (default: the history's page size).
            after: only messages later in the thread than this message id.
            before: only messages earlier in the thread than this message id.

        """
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        items = iter_items(
            self._listing,
            conversation_id,
            order,
            page_size or self.page_size,
            after,
            before,
            semantics=self.cursor_semantics,
        )
        yield from _fold_lazily(
            items, order, self._folder(conversation_id, include_system=self.include_system)
        )

    async def aiter_messages(
        self,
        order: Order = "asc",
        page_size: int | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> AsyncIterator[BaseMessage]:
        """Async twin of :meth:`iter_messages`."""
        conversation_id = await self._aconversation_id()
        if conversation_id is None:
            return
        items = aiter_items(
            self._listing,
            conversation_id,
            order,
            page_size or self.page_size,
            after,
            before,
            semantics=self.cursor_semantics,
        )
        fold = self._folder(conversation_id, include_system=self.include_system)
        group: list[Any] = []
        echoes: set[str] = set()
        async for item in items:
            for message in _feed(group, item, order, fold, echoes):
                yield message
        for message in _flush(group, order, fold, echoes):
            yield message

    def _folder(
        self, conversation_id: str, *, include_system: bool
    ) -> Callable[[list[Any]], list[BaseMessage]]:
        """Fold items of this conversation into LangChain messages."""

        def fold(items: list[Any]) -> list[BaseMessage]:
            return fold_messages(
                items,
                conversation_id=conversation_id,
                agent_id=self.agent_id,
                include_system=include_system,
            )

        return fold

    # ------------------------------------------------------------------ writing

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Record ``messages``: a no-op for what Letta already stored, else an error.

        Raises:
            LettaHistoryWriteError: a message Letta did not store (nothing is written).

        """
        self._hold_snapshot = False
        self._check_stored(messages, self.conversation_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async twin of :meth:`add_messages`."""
        self._hold_snapshot = False
        self._check_stored(messages, await self._aconversation_id())

    def _check_stored(self, messages: Sequence[BaseMessage], conversation_id: str | None) -> None:
        unstored = _not_stored(messages, conversation_id)
        if unstored:
            kinds = ", ".join(sorted({message.type for message in unstored}))
            raise LettaHistoryWriteError(
                f"{len(unstored)} message(s) ({kinds}) are not stored in the Letta "
                "conversation, and Letta stores a message only by running the agent on it. "
                "Send user turns through ChatLetta; nothing was written."
            )

    def clear(self) -> None:
        """Start the session on a fresh, empty conversation; agent memory is untouched."""
        self._switch(self._fresh_conversation())

    async def aclear(self) -> None:
        """Async twin of :meth:`clear`."""
        self._switch(await self._afresh_conversation())

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

    def _switch(self, conversation_id: str) -> None:
        self._conversation_id = conversation_id
        self._owner_checked = True
        self._snapshot = None
        self._hold_snapshot = False


def _not_stored(messages: Sequence[BaseMessage], conversation_id: str | None) -> list[BaseMessage]:
    """The messages of ``messages`` that Letta has not stored in the conversation.

    A message is stored when it carries the conversation's Letta id, or when it comes
    before an AI message Letta stored (it was that turn's input).
    """
    if conversation_id is None:
        return list(messages)
    last_stored_ai = max(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, AIMessage) and is_stored_in(m, conversation_id)
        ),
        default=-1,
    )
    return [
        message
        for position, message in enumerate(messages)
        if position > last_stored_ai and not is_stored_in(message, conversation_id)
    ]


def _feed(
    group: list[Any], item: Any, order: Order, fold: Any, echoes: set[str]
) -> list[BaseMessage]:
    """Add one item; return the messages it completes, in ``order``.

    In either order an agent turn is complete when the next user, system or tool-result
    item arrives: its items are folded together, oldest first. Letta's echo of a
    client-side tool result (the ``ToolMessage`` already stands for it) is dropped in
    either order: newest first, the echo is held until the result it echoes arrives.
    """
    if _is_echo(item, echoes, note=True):
        return []
    if getattr(item, "message_type", None) in AGENT_SIDE:
        group.append(item)
        return []
    return [*_flush(group, order, fold, echoes), *fold([item])]


def _flush(group: list[Any], order: Order, fold: Any, echoes: set[str]) -> list[BaseMessage]:
    """Fold the pending agent turn and empty it; the messages come in ``order``."""
    kept = [item for item in group if not _is_echo(item, echoes, note=False)]
    folded: list[BaseMessage] = fold(_oldest_first(kept, order)) if kept else []
    group.clear()
    return folded if order == "asc" else folded[::-1]


def _is_echo(item: Any, client_returns: set[str], *, note: bool) -> bool:
    """Whether ``item`` echoes a client-side tool result; with ``note``, learn new ones."""
    kind = getattr(item, "message_type", None)
    if kind == "approval_response_message" and note:
        for approval in getattr(item, "approvals", None) or []:
            call_id = getattr(approval, "tool_call_id", None)
            if getattr(approval, "type", None) == "tool" and call_id:
                client_returns.add(str(call_id))
        return False
    return kind == "tool_return_message" and getattr(item, "tool_call_id", None) in client_returns


def _is_alert(item: Any) -> bool:
    """Whether ``item`` is the summary a compaction left (a Letta system alert)."""
    return getattr(item, "message_type", None) == "user_message" and (
        system_alert(getattr(item, "content", None)) is not None
    )


def _is_prompt(message: BaseMessage) -> bool:
    """Whether ``message`` is the conversation's compiled system prompt (not a summary)."""
    return (
        isinstance(message, SystemMessage)
        and message.response_metadata.get("letta_message_type") != SYSTEM_ALERT
    )


def _gone_response() -> Any:
    import httpx

    return httpx.Response(404, request=httpx.Request("GET", "http://letta.invalid/"))


def _oldest_first(items: list[Any], order: Order) -> list[Any]:
    """``items`` oldest first.

    Newest-first pages list stored rows newest first, but the items one row splits
    into (reasoning, then its reply) keep their own order.
    """
    if order == "asc":
        return list(items)
    rows: list[list[Any]] = []
    for item in items:
        if rows and rows[-1][0].id == item.id:
            rows[-1].append(item)
        else:
            rows.append([item])
    return [item for row in reversed(rows) for item in row]


def _fold_lazily(items: Iterator[Any], order: Order, fold: Any) -> Iterator[BaseMessage]:
    group: list[Any] = []
    echoes: set[str] = set()
    for item in items:
        yield from _feed(group, item, order, fold, echoes)
    yield from _flush(group, order, fold, echoes)
