"""A compacted thread read in creation order (`langchain_letta.time_order`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from langchain_letta.errors import LettaCursorError
from langchain_letta.item_rows import newest_first
from langchain_letta.time_order import _window, compacted, in_time_order


def item(n: int, kind: str = "user_message", **fields: Any) -> Any:
    return SimpleNamespace(id=f"message-{n}", message_type=kind, **fields)


def ids(items: list[Any]) -> list[str]:
    return [f"{i.id}/{i.message_type}" for i in items]


def test_positions_that_repeat_are_put_in_creation_order() -> None:
    # as Letta lists it after a compaction: the newest turn among the oldest one
    listing = [
        item(0, "system_message"),
        item(1),
        item(7),
        item(2, "reasoning_message"),
        item(2, "assistant_message"),
        item(8, "assistant_message"),
    ]
    # the messages made in the conversation, by creation sequence (the prompt recompiled)
    made = [item(1), item(2, "reasoning_message"), item(2, "assistant_message")]
    made += [item(7), item(8, "assistant_message"), item(0, "system_message")]
    assert ids(in_time_order(listing, made)) == [
        "message-0/system_message",
        "message-1/user_message",
        "message-2/reasoning_message",  # one stored message's items keep their order
        "message-2/assistant_message",
        "message-7/user_message",
        "message-8/assistant_message",
    ]


def test_a_forks_messages_from_before_the_fork_come_first_as_listed() -> None:
    listing = [item(0, "system_message"), item(5), item(3), item(9), item(8)]
    made = [item(8), item(9)]  # made in the fork; 5 and 3 are the parent's
    assert ids(in_time_order(listing, made)) == [
        "message-0/system_message",
        "message-5/user_message",
        "message-3/user_message",
        "message-8/user_message",
        "message-9/user_message",
    ]


def test_cursors_and_order_apply_to_the_time_ordered_thread() -> None:
    thread = [item(0, "system_message"), item(1), item(2, "reasoning_message")]
    thread += [item(2, "assistant_message"), item(3), item(4, "assistant_message")]
    assert ids(_window(thread, "asc", "message-1", "message-4")) == [
        "message-2/reasoning_message",
        "message-2/assistant_message",
        "message-3/user_message",
    ]
    assert ids(_window(thread, "desc", "message-1", None)) == [
        "message-4/assistant_message",
        "message-3/user_message",
        "message-2/reasoning_message",
        "message-2/assistant_message",
    ]
    with pytest.raises(LettaCursorError):
        _window(thread, "asc", "message-999", None)


def test_a_compaction_is_known_by_its_summary() -> None:
    summary = '{"type": "system_alert", "message": "Summary of earlier turns"}'
    assert compacted([item(1, content="hello"), item(2, content=summary)])
    assert not compacted([item(1, content="hello")])


def test_the_newest_messages_come_newest_first_whichever_way_the_server_lists_them() -> None:
    start = datetime(2026, 12, 2, tzinfo=UTC)
    page = [item(1, date=start), item(2, "reasoning_message", date=start + timedelta(seconds=1))]
    page += [item(2, "assistant_message", date=start + timedelta(seconds=1))]
    expected = [
        "message-2/reasoning_message",
        "message-2/assistant_message",
        "message-1/user_message",
    ]
    assert ids(newest_first(page)) == expected  # Letta 0.16.8: the newest, oldest first
    assert ids(newest_first(newest_first(page))) == expected  # already newest first
