"""The rows of a message listing: the items one stored Letta message splits into.

Letta lists a stored message as several items that share its id (its reasoning, then
its reply). Reversing a listing reverses its rows, never the items within one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["newest_first", "reverse_rows"]


def newest_first(page: list[Any]) -> list[Any]:
    """A page of Letta's listing by creation asked for newest first, newest first.

    Letta 0.16.8 answers `order="desc"` there with the newest messages oldest first
    (measured); a page whose dates fall is taken as given. Each message's items keep
    their order, as in the listing by position.
    """
    dates = [getattr(item, "date", None) for item in page]
    first, last = (dates[0], dates[-1]) if dates else (None, None)
    if first is not None and last is not None and type(first) is type(last) and first > last:
        return list(page)
    return reverse_rows(page)


def reverse_rows(items: list[Any]) -> list[Any]:
    """`items` with their stored messages in reverse, each message's items kept in order."""
    rows: list[list[Any]] = []
    for item in items:
        if rows and rows[-1][0].id == item.id:
            rows[-1].append(item)
        else:
            rows.append([item])
    return [item for row in reversed(rows) for item in row]
