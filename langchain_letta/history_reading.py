"""How a history turns a conversation's stored items into LangChain messages.

Letta lists a conversation as items (several per stored message: reasoning, tool steps,
the reply). A history converts them turn by turn: an agent turn is complete when the next
user, system or tool-result item arrives. `ReadThread` is what one process has read of a
conversation (kept in `langchain_letta.state.THREADS`), so a warm read converts only the
turn that may still grow and what is new; `to_messages_lazily` converts a listing page by
page, in either order. No I/O here: the reads are `langchain_letta.thread_reads`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

from langchain_letta.conversation import Order
from langchain_letta.item_rows import reverse_rows
from langchain_letta.messages import AGENT_SIDE, SYSTEM_ALERT, from_letta_messages

__all__ = [
    "ITEM_BYTES",
    "Convert",
    "ReadThread",
    "ato_messages_lazily",
    "converter",
    "held_bytes",
    "is_prompt",
    "to_messages_lazily",
]

ITEM_BYTES = 1_024
"""What a read thread holds for an item beside its text (see `held_bytes`)."""

Convert = Callable[[list[Any]], list[BaseMessage]]
"""Converts a conversation's items, oldest first, into LangChain messages."""


def converter(agent_id: str, conversation_id: str, *, include_system: bool) -> Convert:
    """Converts items of the agent's conversation `conversation_id` (see `from_letta_messages`)."""
    return partial(
        from_letta_messages,
        conversation_id=conversation_id,
        agent_id=agent_id,
        include_system=include_system,
    )


@dataclass
class ReadThread:
    """What this process has read of one conversation, already converted.

    `complete` holds the messages of every item before the newest user (or system, or
    tool-result) item; `open_turn` holds the items from there on, since the agent's turn
    after it may still grow. A read converts only the open turn and what is new, and
    leaves the compiled system prompt out (when asked to) by where it sits in `complete`
    (`prompts`), not by looking at every message. `size` is about how many bytes it
    holds (`held_bytes` of every item read; the bound of
    `langchain_letta.state.THREADS`).
    """

    complete: list[BaseMessage] = field(default_factory=list)
    prompts: list[int] = field(default_factory=list)
    open_turn: list[Any] = field(default_factory=list)
    last_id: str | None = None
    size: int = 0
    client_returns: set[str] = field(default_factory=set)
    compacted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start_over(self) -> None:
        """Forget what was read: the thread was compacted and is read whole from now on."""
        self.complete, self.open_turn, self.last_id, self.size = [], [], None, 0
        self.prompts = []
        self.client_returns = set()
        self.compacted = True

    def extend(
        self, new_items: list[Any], convert: Convert, *, include_system: bool = True
    ) -> list[BaseMessage]:
        """Add newly read items; return the whole thread as messages.

        `convert` must keep the system prompt; without `include_system` it is left out of
        what is returned (not of what is kept).
        """
        items = self.open_turn + [
            item for item in new_items if not is_echo(item, self.client_returns, note=True)
        ]
        cut = max(
            (i for i, item in enumerate(items) if item.message_type not in AGENT_SIDE), default=0
        )
        if cut > 0:
            done = convert(items[:cut])
            start = len(self.complete)
            self.prompts += [start + i for i, message in enumerate(done) if is_prompt(message)]
            self.complete += done
        self.open_turn = items[cut:]
        self.size += sum(held_bytes(item) for item in new_items)
        if new_items:
            self.last_id = new_items[-1].id
        tail = convert(self.open_turn)
        if include_system:
            return self.complete + tail
        return _left_out(self.complete, self.prompts) + [m for m in tail if not is_prompt(m)]


def _left_out(messages: list[BaseMessage], at: list[int]) -> list[BaseMessage]:
    """`messages` without those at the indexes `at` (ascending), copied by slices."""
    kept: list[BaseMessage] = []
    start = 0
    for index in at:
        kept += messages[start:index]
        start = index + 1
    return kept + messages[start:]


def held_bytes(item: Any) -> int:
    """About how many bytes a thread holds for `item`, at least (measured: 0.6-0.8 of this).

    The item's JSON text twice (the item and its converted message share little) and
    `ITEM_BYTES` of objects around it; estimated once, when the item is read.
    """
    dump = getattr(item, "model_dump_json", None)
    text = dump() if callable(dump) else repr(item)
    return ITEM_BYTES + 2 * len(text)


def _feed(
    group: list[Any], item: Any, order: Order, convert: Convert, echoes: set[str]
) -> list[BaseMessage]:
    """Add one item; return the messages it completes, in `order`.

    In either order an agent turn is complete when the next user, system or tool-result
    item arrives: its items are converted together, oldest first. Letta's echo of a
    client-side tool result (the `ToolMessage` already stands for it) is dropped in
    either order: newest first, the echo is held until the result it echoes arrives.
    """
    if is_echo(item, echoes, note=True):
        return []
    if getattr(item, "message_type", None) in AGENT_SIDE:
        group.append(item)
        return []
    return [*_flush(group, order, convert, echoes), *convert([item])]


def _flush(group: list[Any], order: Order, convert: Convert, echoes: set[str]) -> list[BaseMessage]:
    """Convert the pending agent turn and empty it; the messages come in `order`."""
    kept = [item for item in group if not is_echo(item, echoes, note=False)]
    converted: list[BaseMessage] = convert(oldest_first(kept, order)) if kept else []
    group.clear()
    return converted if order == "asc" else converted[::-1]


def is_echo(item: Any, client_returns: set[str], *, note: bool) -> bool:
    """Whether `item` echoes a client-side tool result; with `note`, learn new ones."""
    kind = getattr(item, "message_type", None)
    if kind == "approval_response_message" and note:
        for approval in getattr(item, "approvals", None) or []:
            call_id = getattr(approval, "tool_call_id", None)
            if getattr(approval, "type", None) == "tool" and call_id:
                client_returns.add(str(call_id))
        return False
    return kind == "tool_return_message" and getattr(item, "tool_call_id", None) in client_returns


def is_prompt(message: BaseMessage) -> bool:
    """Whether `message` is the conversation's compiled system prompt (not a summary)."""
    return (
        isinstance(message, SystemMessage)
        and message.response_metadata.get("letta_message_type") != SYSTEM_ALERT
    )


def oldest_first(items: list[Any], order: Order) -> list[Any]:
    """`items` oldest first.

    Newest-first pages list stored rows newest first, but the items one row splits
    into (reasoning, then its reply) keep their own order.
    """
    return list(items) if order == "asc" else reverse_rows(items)


def to_messages_lazily(
    items: Iterator[Any], order: Order, convert: Convert
) -> Iterator[BaseMessage]:
    """Convert `items` (a listing in `order`) into messages as they come, in `order`."""
    group: list[Any] = []
    echoes: set[str] = set()
    for item in items:
        yield from _feed(group, item, order, convert, echoes)
    yield from _flush(group, order, convert, echoes)


async def ato_messages_lazily(
    items: AsyncIterator[Any], order: Order, convert: Convert
) -> AsyncIterator[BaseMessage]:
    """Async twin of `to_messages_lazily`."""
    group: list[Any] = []
    echoes: set[str] = set()
    async for item in items:
        for message in _feed(group, item, order, convert, echoes):
            yield message
    for message in _flush(group, order, convert, echoes):
        yield message
