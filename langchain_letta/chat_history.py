"""``LettaChatMessageHistory``: a chat-message history backed by a Letta conversation."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.connection import make_clients, resolve_api_key, resolve_base_url
from langchain_letta.conversation import Conversations, Order
from langchain_letta.errors import LettaHistoryWriteError, LettaInputError, translate_error
from langchain_letta.memory import LEDGER
from langchain_letta.messages import AGENT_SIDE, fold_messages, is_stored_in
from langchain_letta.paging import CursorSemantics, aiter_items, iter_items
from langchain_letta.sessions import SessionResolver, SessionStore, check_session_id

__all__ = ["LettaChatMessageHistory"]

_CACHED_ITEMS = 200_000


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def extend(
        self, new_items: list[Any], fold: Callable[[list[Any]], list[BaseMessage]]
    ) -> list[BaseMessage]:
        """Add newly read items; return the whole thread as messages."""
        items = self.tail + new_items
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


class _ThreadCache:
    """Read threads per conversation, shared by every history of the process.

    Least recently used threads are dropped once the cache holds more than
    ``max_items`` stored items in all.
    """

    def __init__(self, max_items: int) -> None:
        self._max_items = max_items
        self._guard = threading.Lock()
        self._threads: OrderedDict[tuple[str, str], _Thread] = OrderedDict()

    def get(self, base_url: str, conversation_id: str) -> _Thread:
        key = (base_url, conversation_id)
        with self._guard:
            thread = self._threads.pop(key, None) or _Thread()
            self._threads[key] = thread
            while len(self._threads) > 1 and (
                sum(cached.size for cached in self._threads.values()) > self._max_items
            ):
                self._threads.popitem(last=False)
            return thread


_THREADS = _ThreadCache(_CACHED_ITEMS)


async def _acquire(lock: threading.Lock) -> None:
    """Take ``lock`` without blocking the event loop; a cancelled wait never leaks it."""
    if lock.acquire(blocking=False):
        return
    waiting = asyncio.ensure_future(asyncio.to_thread(lock.acquire))
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        waiting.add_done_callback(lambda _: lock.release())
        raise


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
            Include the conversation's compiled system prompt (default ``False``).
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

    Clearing:
        ``clear()`` starts the session on a fresh, empty conversation. It never touches
        the agent's memory blocks (shared by all sessions); the old conversation stays
        on the server, untagged.
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
    ) -> None:
        if session_id is None and conversation_id is None:
            raise LettaInputError("Give a session_id or a conversation_id.")
        if session_id is not None:
            check_session_id(session_id)
        if page_size < 1:
            raise LettaInputError("page_size must be at least 1.")
        self.session_id = session_id
        self.agent_id = agent_id
        self.include_system = include_system
        self.page_size = page_size
        self.cursor_semantics: CursorSemantics = cursor_semantics
        self.base_url = resolve_base_url(base_url)
        if client is None or async_client is None:
            built, abuilt = make_clients(
                base_url=self.base_url,
                api_key=resolve_api_key(api_key),
                timeout=timeout,
                max_retries=max_retries,
            )
            client, async_client = client or built, async_client or abuilt
        self._conversations = Conversations(client, async_client, busy_timeout=0)
        self._cache_key = str(client.base_url)
        self._resolver = SessionResolver(client, agent_id, session_store)
        self._conversation_id = conversation_id
        self._snapshot: list[BaseMessage] | None = None
        self._hold_snapshot = False

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
        """The conversation of this history (``None`` for a session not created yet)."""
        if self._conversation_id is None and self.session_id is not None:
            self._conversation_id = self._resolver.resolve(self.session_id, create=False)
        return self._conversation_id

    async def _aconversation_id(self) -> str | None:
        if self._conversation_id is None and self.session_id is not None:
            cached = self._resolver.cached(self.session_id)
            self._conversation_id = cached or await asyncio.to_thread(
                self._resolver.resolve, self.session_id, create=False
            )
        return self._conversation_id

    # ------------------------------------------------------------------ reading

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The thread as LangChain messages, oldest first (incremental after the first read)."""
        if self._hold_snapshot and self._snapshot is not None:
            self._hold_snapshot = False
            return self._snapshot
        conversation_id = self.conversation_id
        if conversation_id is None:
            return []
        thread = _THREADS.get(self._cache_key, conversation_id)
        with thread.lock:
            new_items = list(
                iter_items(
                    self._conversations, conversation_id, "asc", self.page_size, thread.last_id
                )
            )
            folded = thread.extend(new_items, self._folder(conversation_id, include_system=True))
        return self._keep(folded)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async twin of :attr:`messages`."""
        if self._hold_snapshot and self._snapshot is not None:
            self._hold_snapshot = False
            return self._snapshot
        conversation_id = await self._aconversation_id()
        if conversation_id is None:
            return []
        thread = _THREADS.get(self._cache_key, conversation_id)
        await _acquire(thread.lock)
        try:
            new_items = [
                item
                async for item in aiter_items(
                    self._conversations, conversation_id, "asc", self.page_size, thread.last_id
                )
            ]
            folded = thread.extend(new_items, self._folder(conversation_id, include_system=True))
        finally:
            thread.lock.release()
        return self._keep(folded)

    def _keep(self, folded: list[BaseMessage]) -> list[BaseMessage]:
        """Remember this read as the snapshot (see :meth:`hold_snapshot`) and return it."""
        if not self.include_system:
            folded = [message for message in folded if not isinstance(message, SystemMessage)]
        self._snapshot = folded
        return folded

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
            self._conversations,
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
            self._conversations,
            conversation_id,
            order,
            page_size or self.page_size,
            after,
            before,
            semantics=self.cursor_semantics,
        )
        fold = self._folder(conversation_id, include_system=self.include_system)
        group: list[Any] = []
        async for item in items:
            for message in _feed(group, item, order, fold):
                yield message
        for message in _flush(group, order, fold):
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
        self._switch(await asyncio.to_thread(self._fresh_conversation))

    def _fresh_conversation(self) -> str:
        if self.session_id is not None:
            return self._resolver.renew(self.session_id)
        try:
            created = self._conversations.client.conversations.create(agent_id=self.agent_id)
        except Exception as error:
            raise translate_error(error) from error
        LEDGER.created(self.agent_id, created.id)
        return str(created.id)

    def _switch(self, conversation_id: str) -> None:
        self._conversation_id = conversation_id
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


def _feed(group: list[Any], item: Any, order: Order, fold: Any) -> list[BaseMessage]:
    """Add one item; return the messages it completes, in ``order``.

    In either order an agent turn is complete when the next user, system or tool-result
    item arrives: its items are folded together, oldest first.
    """
    if getattr(item, "message_type", None) in AGENT_SIDE:
        group.append(item)
        return []
    return [*_flush(group, order, fold), *fold([item])]


def _flush(group: list[Any], order: Order, fold: Any) -> list[BaseMessage]:
    """Fold the pending agent turn and empty it; the messages come in ``order``."""
    folded: list[BaseMessage] = fold(_oldest_first(group, order)) if group else []
    group.clear()
    return folded if order == "asc" else folded[::-1]


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
    for item in items:
        yield from _feed(group, item, order, fold)
    yield from _flush(group, order, fold)
