"""Cursor paging on both cursor semantics, against an in-memory fake of Letta's list."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from langchain_letta.conversation import Order
from langchain_letta.paging import Pager, aiter_items, guess_semantics, iter_items

Semantics = Literal["absolute", "relative"]


def thread(rows: int) -> list[list[SimpleNamespace]]:
    """Stored rows, oldest first; every third row splits into two items (reasoning + reply)."""
    result = []
    for n in range(rows):
        row_id = f"message-{n:04d}"
        kinds = ["reasoning_message", "assistant_message"] if n % 3 == 2 else ["user_message"]
        result.append([SimpleNamespace(id=row_id, message_type=kind) for kind in kinds])
    return result


@dataclass
class FakeConversations:
    """Letta's ``conversations.messages.list`` on one cursor semantics.

    ``limit`` counts stored rows before the split into items, an unknown cursor is
    ignored, and the items of one row keep their order in both orders (as 0.16.8 does).
    """

    rows: list[list[SimpleNamespace]]
    semantics: Semantics
    base_url: str = "http://127.0.0.1:8283"
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def client(self) -> SimpleNamespace:
        return SimpleNamespace(base_url=self.base_url)

    def page(
        self,
        conversation_id: str,
        *,
        order: str,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        self.requests.append({"order": order, "limit": limit, "after": after, "before": before})
        ids = [row[0].id for row in self.rows]
        if self.semantics == "relative" and order == "desc":
            after, before = before, after  # "after" = further along the order
        positions = list(range(len(self.rows)))
        if after in ids:
            positions = [p for p in positions if p > ids.index(after)]
        if before in ids:
            positions = [p for p in positions if p < ids.index(before)]
        chosen = sorted(positions, reverse=order == "desc")[:limit]
        return [item for p in chosen for item in self.rows[p]]

    async def apage(self, conversation_id: str, **request: Any) -> list[Any]:
        return self.page(conversation_id, **request)


def conversations(fake: FakeConversations) -> Any:
    """The fake, typed as the ``Conversations`` it stands in for."""
    return fake


def keys(items: list[Any]) -> list[tuple[str, str]]:
    return [(item.id, item.message_type) for item in items]


def expected(rows: list[list[SimpleNamespace]], order: str) -> list[tuple[str, str]]:
    ordered = rows if order == "asc" else rows[::-1]
    return [(item.id, item.message_type) for row in ordered for item in row]


@pytest.mark.parametrize("semantics", ["absolute", "relative"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 25, 100])
def test_pages_are_complete_and_ordered(semantics: Semantics, order: Order, page_size: int) -> None:
    rows = thread(25)
    fake = FakeConversations(rows, semantics)

    items = list(iter_items(conversations(fake), "conv-1", order, page_size, semantics=semantics))

    assert keys(items) == expected(rows, order)
    assert len(fake.requests) == len(rows) // page_size + 1


@pytest.mark.parametrize("server", ["absolute", "relative"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_wrong_guess_flips_once_and_still_pages_everything(server: Semantics, order: Order) -> None:
    rows = thread(20)
    fake = FakeConversations(rows, server)
    wrong: Semantics = "relative" if server == "absolute" else "absolute"

    items = list(iter_items(conversations(fake), "conv-1", order, 4, semantics=wrong))

    assert keys(items) == expected(rows, order)
    flips = 1 if order == "desc" else 0  # ascending cursors mean the same on both
    assert len(fake.requests) == 20 // 4 + 1 + flips


def test_accept_flips_on_a_page_already_seen() -> None:
    rows = thread(6)
    pager = Pager("desc", 2, semantics="absolute")
    first = rows[5] + rows[4]
    assert pager.accept(first) == first
    assert pager.next_request() == {
        "order": "desc",
        "limit": 2,
        "after": None,
        "before": rows[4][0].id,
    }

    # A relative-cursor server answered "before" as "newer than": a page already seen.
    assert pager.accept(rows[5]) == []
    assert pager.semantics == "relative"
    assert not pager.done
    assert pager.next_request() == {
        "order": "desc",
        "limit": 2,
        "after": rows[4][0].id,
        "before": None,
    }
    assert pager.accept(rows[3] + rows[2]) == rows[3] + rows[2]


def test_accept_flips_only_once() -> None:
    rows = thread(4)
    pager = Pager("desc", 2, semantics="absolute")
    pager.accept(rows[3] + rows[2])
    pager.accept(rows[3])  # flip
    assert pager.accept(rows[3]) == []
    assert pager.done  # a server that never moves: stop


@pytest.mark.parametrize("semantics", ["absolute", "relative"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_after_and_before_mean_later_and_earlier_in_the_thread(
    semantics: Semantics, order: Order
) -> None:
    rows = thread(30)
    fake = FakeConversations(rows, semantics)
    after, before = rows[5][0].id, rows[24][0].id

    items = list(iter_items(conversations(fake), "c", order, 4, after, before, semantics=semantics))

    assert keys(items) == expected(rows[6:24], order)
    later = iter_items(conversations(fake), "c", order, 4, after=after, semantics=semantics)
    assert keys(list(later)) == expected(rows[6:], order)
    earlier = iter_items(conversations(fake), "c", order, 4, before=before, semantics=semantics)
    assert keys(list(earlier)) == expected(rows[:24], order)


def test_paging_is_lazy() -> None:
    fake = FakeConversations(thread(50), "absolute")
    items = iter_items(conversations(fake), "c", "desc", 10, semantics="absolute")
    assert fake.requests == []
    next(items)
    assert len(fake.requests) == 1
    for _ in range(12):
        next(items)
    assert len(fake.requests) == 1  # ten rows, two of them split: 13 items on the first page
    next(items)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("semantics", ["absolute", "relative"])
def test_async_twin(semantics: Semantics) -> None:
    rows = thread(17)
    fake = FakeConversations(rows, semantics)

    async def collect() -> list[Any]:
        return [
            i async for i in aiter_items(conversations(fake), "c", "desc", 5, semantics=semantics)
        ]

    assert keys(asyncio.run(collect())) == expected(rows, "desc")


@pytest.mark.parametrize("server", ["absolute", "relative"])
def test_auto_guesses_from_the_url_and_recovers(server: Semantics) -> None:
    rows = thread(12)
    url = "http://127.0.0.1:8283" if server == "relative" else "https://api.letta.com"
    fake = FakeConversations(rows, server, base_url=url)  # the guess is wrong on purpose

    assert keys(list(iter_items(conversations(fake), "c", "desc", 5))) == expected(rows, "desc")


def test_guess_semantics() -> None:
    assert guess_semantics("https://api.letta.com") == "relative"
    assert guess_semantics("https://eu.api.letta.com/") == "relative"
    assert guess_semantics("http://127.0.0.1:8283") == "absolute"
    assert guess_semantics("https://notletta.com") == "absolute"
