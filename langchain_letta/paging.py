"""Cursor paging over a conversation's stored messages, on either cursor semantics.

Letta's ``after``/``before`` cursors are absolute on the open-source server (later /
earlier in the conversation, whatever the order) and relative to the order on Letta
Cloud. :class:`Pager` plans each request in thread terms ("later than", "earlier
than") and translates them for the server, so no message is skipped or repeated
across pages, including pages longer than the limit (one stored message split into
several items that share its id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from langchain_letta.conversation import Conversations, Order

__all__ = ["CursorSemantics", "Pager", "aiter_items", "iter_items"]

CursorSemantics = Literal["auto", "absolute", "relative"]


def guess_semantics(base_url: str) -> Literal["absolute", "relative"]:
    """Letta Cloud reads cursors relative to the order; the open-source server absolutely."""
    host = urlparse(base_url).hostname or ""
    return "relative" if host == "letta.com" or host.endswith(".letta.com") else "absolute"


@dataclass
class Pager:
    """Plans the requests that page through a conversation in one direction.

    Use: ``while (request := pager.next_request()) is not None: items = fetch(**request);
    yield from pager.accept(items)``.
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
        """The keyword arguments of the next page request, or ``None`` when done."""
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


def _pager(
    conversations: Conversations,
    order: Order,
    page_size: int,
    after: str | None,
    before: str | None,
    semantics: CursorSemantics,
) -> Pager:
    resolved = (
        guess_semantics(str(conversations.client.base_url)) if semantics == "auto" else semantics
    )
    return Pager(order, page_size, later_than=after, earlier_than=before, semantics=resolved)


def iter_items(
    conversations: Conversations,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
) -> Iterator[Any]:
    """Lazily yield a conversation's stored items, one page per request."""
    pager = _pager(conversations, order, page_size, after, before, semantics)
    while (request := pager.next_request()) is not None:
        yield from pager.accept(conversations.page(conversation_id, **request))


async def aiter_items(
    conversations: Conversations,
    conversation_id: str,
    order: Order,
    page_size: int,
    after: str | None = None,
    before: str | None = None,
    *,
    semantics: CursorSemantics = "auto",
) -> AsyncIterator[Any]:
    """Async twin of :func:`iter_items`."""
    pager = _pager(conversations, order, page_size, after, before, semantics)
    while (request := pager.next_request()) is not None:
        for item in pager.accept(await conversations.apage(conversation_id, **request)):
            yield item
