"""Cursor paging over a conversation's stored messages, on either cursor semantics.

Letta's `after`/`before` cursors are absolute on the open-source server (later /
earlier in the conversation, whatever the order) and relative to the order on Letta
Cloud. `Pager` plans each request in thread terms ("later than", "earlier
than") and translates them for the server, so no message is skipped or repeated
across pages, including pages longer than the limit (one stored message split into
several items that share its id).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from letta_client import AsyncLetta, Letta

from langchain_letta.clients import for_running_loop
from langchain_letta.errors import (
    LettaCursorError,
    LettaResponseError,
    letta_errors,
)
from langchain_letta.events import letta_models
from langchain_letta.item_rows import newest_first

if TYPE_CHECKING:
    from langchain_letta.conversation import Order

__all__ = [
    "CursorSemantics",
    "MessageListing",
    "Pager",
    "aiter_items",
    "check_cursor",
    "iter_items",
    "iter_newer",
]

CursorSemantics = Literal["auto", "absolute", "relative"]


def guess_semantics(base_url: str) -> Literal["absolute", "relative"]:
    """Letta Cloud reads cursors relative to the order; the open-source server absolutely."""
    host = urlparse(base_url).hostname or ""
    return "relative" if host == "letta.com" or host.endswith(".letta.com") else "absolute"


@dataclass
class Pager:
    """Plans the requests that page through a conversation in one direction.

    Use: `while (request := pager.next_request()) is not None: items = fetch(**request);
    yield from pager.accept(items)`.
    """

    order: Order
    limit: int
    later_than: str | None = None
    earlier_than: str | None = None
    semantics: Literal["absolute", "relative"] = "absolute"
    done: bool = False
    _flipped: bool = False
    _last_keys: set[tuple[str, str]] = field(default_factory=set)

    def next_request(self) -> dict[str, Any] | None:
        """The keyword arguments of the next page request, or `None` when done."""
        if self.done:
            return None
        later, earlier = self.later_than, self.earlier_than
        if self.order == "desc" and self.semantics == "relative":
            later, earlier = earlier, later  # Cloud: "after" means further in this order
        return {"order": self.order, "limit": self.limit, "after": later, "before": earlier}

    def accept(self, items: list[Any]) -> list[Any]:
        """Take one page; return its items not yet yielded and move the cursor on."""
        keys = {(item.id, str(item.message_type)) for item in items}
        fresh = [item for item in items if (item.id, str(item.message_type)) not in self._last_keys]
        if items and not fresh and not self._flipped and self.order == "desc":
            # Only a page already seen came back: the server reads cursors the other way
            # round. Ask again from the same cursor, translated.
            self._flipped = True
            self.semantics = "relative" if self.semantics == "absolute" else "absolute"
            return []
        self._last_keys = keys
        if len({item.id for item in items}) < self.limit or not fresh:
            self.done = True
        elif self.order == "asc":
            self.later_than = items[-1].id
        else:
            self.earlier_than = items[-1].id
        return fresh


_LISTING = "The server's message listing"
_MESSAGE_ID = re.compile("message-[0-9A-Za-z-]+")


def check_cursor(cursor: object, name: str) -> str | None:
    """`cursor` if it is `None` or a Letta message id, else `LettaCursorError`."""
    if cursor is None or (isinstance(cursor, str) and _MESSAGE_ID.fullmatch(cursor)):
        return cursor
    shown = cursor[:60] if isinstance(cursor, str) else type(cursor).__name__
    raise LettaCursorError(f"{name}={shown!r} is not a Letta message id ('message-<uuid>').")


def _query(conversation_id: str, request: dict[str, Any]) -> dict[str, Any]:
    query = {key: value for key, value in request.items() if value is not None}
    return {"conversation_id": conversation_id, **query}


def _decoded(page: object) -> list[Any]:
    """The items of one listing page; `LettaResponseError` if it is not one."""
    if not isinstance(page, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("message_type"), str)
        for item in page
    ):
        raise LettaResponseError(
            f"The server answered a message listing with {str(page)[:80]!r}, not a list "
            "of messages."
        )
    return letta_models(page)


def _starts_the_conversation(page: object) -> bool:
    if not isinstance(page, list):
        raise LettaResponseError(f"The server answered a message listing with {str(page)[:80]!r}.")
    return (
        bool(page) and isinstance(page[0], dict) and page[0].get("message_type") == "system_message"
    )


class MessageListing:
    """A conversation's stored items: pages by position, and what is new by creation time.

    `page` reads the conversation's own listing, which holds everything the
    conversation shows (a fork's messages from before the fork among them) in the
    order of the server's positions. A compaction on Letta 0.16.8 renumbers the
    positions of the messages still in context, so after one that order interleaves
    old and new turns and a position cursor no longer finds what came later.
    `newer` therefore reads what was created after a known message through
    Letta's message listing by creation time (`GET /v1/messages/`), which a
    compaction leaves in order; every new message of a conversation, a fork's too,
    is found there. A compacted conversation is read whole instead, in creation order
    (`langchain_letta.time_order`).
    """

    def __init__(self, client: Letta, async_client: AsyncLetta) -> None:
        self.client = client
        self._async_client = async_client

    @property
    def async_client(self) -> AsyncLetta:
        """The async letta-client for the running event loop."""
        return for_running_loop(self._async_client)

    def page(
        self,
        conversation_id: str,
        *,
        order: Order,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        """One page of the conversation's listing (several items per stored message)."""
        with letta_errors(reading=_LISTING):
            response = self.client.conversations.messages.with_raw_response.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
            page = response.json()
        return _decoded(page)

    async def apage(
        self,
        conversation_id: str,
        *,
        order: Order,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        """Async twin of `page`."""
        with letta_errors(reading=_LISTING):
            response = await self.async_client.conversations.messages.with_raw_response.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
            page = await response.json()
        return _decoded(page)

    def newer(self, conversation_id: str, after: str | None, limit: int) -> list[Any]:
        """Items created after message `after` (else from the first), oldest first.

        Raises `LettaCursorError` when `after` is gone.
        """
        return self._made(conversation_id, {"order": "asc", "limit": limit, "after": after})

    async def anewer(self, conversation_id: str, after: str | None, limit: int) -> list[Any]:
        """Async twin of `newer`."""
        return await self._amade(conversation_id, {"order": "asc", "limit": limit, "after": after})

    def newest(self, conversation_id: str, limit: int) -> list[Any]:
        """The items of the newest `limit` messages made in the conversation, newest first.

        By creation, which a compaction leaves in order: once a conversation was
        compacted, its listing by position no longer ends with its newest messages.
        A fork's messages from before the fork are not among them.
        """
        return newest_first(self._made(conversation_id, {"order": "desc", "limit": limit}))

    async def anewest(self, conversation_id: str, limit: int) -> list[Any]:
        """Async twin of `newest`."""
        return newest_first(await self._amade(conversation_id, {"order": "desc", "limit": limit}))

    def _made(self, conversation_id: str, request: dict[str, Any]) -> list[Any]:
        """One page of Letta's listing by creation (`GET /v1/messages/`) of a conversation."""
        with letta_errors(reading=_LISTING, cursor=request.get("after")):
            response = self.client.messages.with_raw_response.list(
                **_query(conversation_id, request)
            )
            page = response.json()
        return _decoded(page)

    async def _amade(self, conversation_id: str, request: dict[str, Any]) -> list[Any]:
        """Async twin of `_made`."""
        with letta_errors(reading=_LISTING, cursor=request.get("after")):
            response = await self.async_client.messages.with_raw_response.list(
                **_query(conversation_id, request)
            )
            page = await response.json()
        return _decoded(page)

    def owns(self, conversation_id: str, message_id: str) -> bool:
        """Whether `message_id` is a message of the conversation (one request).

        The conversation's own listing ignores a cursor it does not hold and starts
        from the conversation's first item, its system message; after a cursor it
        holds, that item never comes.
        """
        with letta_errors(reading=_LISTING, cursor=message_id):
            response = self.client.conversations.messages.with_raw_response.list(
                conversation_id, order="asc", limit=1, after=message_id
            )
            page = response.json()
        return not _starts_the_conversation(page)

    async def aowns(self, conversation_id: str, message_id: str) -> bool:
        """Async twin of `owns`."""
        with letta_errors(reading=_LISTING, cursor=message_id):
            response = await self.async_client.conversations.messages.with_raw_response.list(
                conversation_id, order="asc", limit=1, after=message_id
            )
            page = await response.json()
        return not _starts_the_conversation(page)


def _foreign(cursor: str) -> LettaCursorError:
    return LettaCursorError(f"The cursor {cursor} names no message of this conversation.")


def _pager(
    conversations: MessageListing,
    order: Order,
    page_size: int,
    after: str | None,
    before: str | None,
    semantics: CursorSemantics,
) -> Pager:
    check_cursor(after, "after")
    check_cursor(before, "before")
    resolved = (
        guess_semantics(str(conversations.client.base_url)) if semantics == "auto" else semantics
    )
    return Pager(order, page_size, later_than=after, earlier_than=before, semantics=resolved)


def iter_newer(
    listing: MessageListing, conversation_id: str, after: str, page_size: int
) -> Iterator[Any]:
    """Every item created after message `after`, oldest first, one page per request."""
    while True:
        page = listing.newer(conversation_id, after, page_size)
        yield from page
        if len({item.id for item in page}) < page_size:
            return
        after = page[-1].id


async def aiter_newer(
    listing: MessageListing, conversation_id: str, after: str, page_size: int
) -> AsyncIterator[Any]:
    """Async twin of `iter_newer`."""
    while True:
        page = await listing.anewer(conversation_id, after, page_size)
        for item in page:
            yield item
        if len({item.id for item in page}) < page_size:
            return
        after = page[-1].id


def iter_items(
    conversations: MessageListing,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
    trusted: bool = False,
    first_page: list[Any] | None = None,
) -> Iterator[Any]:
    """Lazily yield a conversation's stored items, one page per request.

    A cursor that is not `trusted` (from this process's own earlier read) costs one
    more request, checking that it is a message of this conversation. A `first_page`
    already read (oldest first, from the start) is used instead of asking for it.

    Raises:
        LettaCursorError: `after`/`before` is malformed, unknown, or a message of
            another conversation.

    """
    pager = _pager(conversations, order, page_size, after, before, semantics)
    owns = getattr(conversations, "owns", None)
    for cursor in (after, before):
        if cursor and not trusted and owns is not None and not owns(conversation_id, cursor):
            raise _foreign(cursor)
    while (request := pager.next_request()) is not None:
        if first_page is None:
            page = conversations.page(conversation_id, **request)
        else:
            page, first_page = first_page, None
        yield from pager.accept(page)


async def aiter_items(
    conversations: MessageListing,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
    trusted: bool = False,
    first_page: list[Any] | None = None,
) -> AsyncIterator[Any]:
    """Async twin of `iter_items`."""
    pager = _pager(conversations, order, page_size, after, before, semantics)
    aowns = getattr(conversations, "aowns", None)
    for cursor in (after, before):
        if (
            cursor
            and not trusted
            and aowns is not None
            and not await aowns(conversation_id, cursor)
        ):
            raise _foreign(cursor)
    while (request := pager.next_request()) is not None:
        if first_page is None:
            page = await conversations.apage(conversation_id, **request)
        else:
            page, first_page = first_page, None
        for item in pager.accept(page):
            yield item
