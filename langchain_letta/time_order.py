"""Reading a compacted conversation in the order its messages were made.

Letta 0.16.8 lists a conversation by position, and a compaction renumbers only the
messages still in context: from then on positions repeat (an evicted message keeps its
old number, a kept one gets a new one from 0). The listing then puts the newest turns
among the oldest, two reads may order the rows that share a position differently, and a
position cursor skips the rows that share its position. Message dates are whole seconds,
too coarse to order by. So a compacted conversation is read whole (its listing, and
Letta's listing of the messages made in it, `GET /v1/messages/`, which follows the
server's creation sequence: two requests) and put in creation order, the system prompt
first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_letta.errors import LettaCursorError
from langchain_letta.item_rows import reverse_rows
from langchain_letta.messages import system_alert
from langchain_letta.paging import (
    CursorSemantics,
    MessageListing,
    aiter_items,
    check_cursor,
    iter_items,
)

if TYPE_CHECKING:
    from langchain_letta.conversation import Order

__all__ = [
    "WHOLE",
    "aiter_thread",
    "aread_whole",
    "compacted",
    "in_time_order",
    "is_alert",
    "iter_thread",
    "read_whole",
]

WHOLE = 1_000_000
"""Rows asked for in one request when a compacted conversation is read whole."""

PROBE = 100
"""Rows of the first page at least: enough to hold the summary a compaction leaves."""


def is_alert(item: Any) -> bool:
    """Whether `item` is the summary a compaction left (a Letta system alert)."""
    return getattr(item, "message_type", None) == "user_message" and (
        system_alert(getattr(item, "content", None)) is not None
    )


def compacted(items: Iterable[Any]) -> bool:
    """Whether a listing shows a compaction (its summary is among the first rows)."""
    return any(is_alert(item) for item in items)


def in_time_order(items: list[Any], made: list[Any]) -> list[Any]:
    """A conversation's listing `items` in creation order, the system prompt first.

    `made` lists the messages made in the conversation in the server's creation order;
    what `items` holds beyond them (a fork's messages from before the fork) came first
    and keeps its place. The sort is stable, so the items one stored message splits
    into (its reasoning, then its reply: they share the message's id) keep their order.
    """
    rank: dict[str, int] = {}
    for index, item in enumerate(made):
        rank.setdefault(item.id, index)
    return sorted(
        items, key=lambda item: (item.message_type != "system_message", rank.get(item.id, -1))
    )


def read_whole(listing: MessageListing, conversation_id: str) -> list[Any]:
    """A compacted conversation's items, whole and in creation order (two requests)."""
    items = listing.page(conversation_id, order="asc", limit=WHOLE)
    return in_time_order(items, listing.newer(conversation_id, None, WHOLE))


async def aread_whole(listing: MessageListing, conversation_id: str) -> list[Any]:
    """Async twin of `read_whole`."""
    items = await listing.apage(conversation_id, order="asc", limit=WHOLE)
    return in_time_order(items, await listing.anewer(conversation_id, None, WHOLE))


def _window(items: list[Any], order: Order, after: str | None, before: str | None) -> list[Any]:
    """The items (in time order) later than `after` and earlier than `before`, in `order`."""
    ids = [item.id for item in items]
    for cursor in (after, before):
        if cursor is not None and cursor not in ids:
            raise LettaCursorError(f"The cursor {cursor} names no message of this conversation.")
    start = len(ids) - ids[::-1].index(after) if after is not None else 0
    end = ids.index(before) if before is not None else len(ids)
    chosen = items[start:end]
    return chosen if order == "asc" else reverse_rows(chosen)


def _probe_limit(page_size: int) -> int:
    return max(page_size, PROBE)


def iter_thread(
    listing: MessageListing,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
) -> Iterator[Any]:
    """A conversation's items in `order`: paged lazily, or whole once it was compacted.

    The first page, oldest first, tells whether the conversation was compacted; it is
    the first page of the walk too when that is oldest first from the start.

    Raises:
        LettaCursorError: `after`/`before` is malformed, unknown, or a message of
            another conversation.

    """
    check_cursor(after, "after")
    check_cursor(before, "before")
    first = listing.page(conversation_id, order="asc", limit=_probe_limit(page_size))
    if compacted(first):
        yield from _window(read_whole(listing, conversation_id), order, after, before)
        return
    from_start = order == "asc" and after is None and before is None
    yield from iter_items(
        listing,
        conversation_id,
        order,
        page_size,
        after,
        before,
        semantics=semantics,
        first_page=first if from_start else None,
    )


async def aiter_thread(
    listing: MessageListing,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
) -> AsyncIterator[Any]:
    """Async twin of `iter_thread`."""
    check_cursor(after, "after")
    check_cursor(before, "before")
    first = await listing.apage(conversation_id, order="asc", limit=_probe_limit(page_size))
    if compacted(first):
        whole = await aread_whole(listing, conversation_id)
        for item in _window(whole, order, after, before):
            yield item
        return
    from_start = order == "asc" and after is None and before is None
    items = aiter_items(
        listing,
        conversation_id,
        order,
        page_size,
        after,
        before,
        semantics=semantics,
        first_page=first if from_start else None,
    )
    async for item in items:
        yield item
