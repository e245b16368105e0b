"""What the raw server holds, read with letta-client alone, and how it must match the model.

The model of a conversation is the list of user texts the callers were told about, in
order; each is *certain* (the caller was told it succeeded, or ``turn_stored=True``) or
*maybe* (the caller got an error that could not say). A certain text must be stored
exactly once in its place; a maybe text at most once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from letta_client import Letta


@dataclass(frozen=True)
class Expect:
    """One user turn the model expects in a conversation."""

    text: str
    certain: bool = True


def item_text(item: Any) -> str:
    content = getattr(item, "content", "")
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", "") or "" for part in content or [])


def is_summary(text: str) -> bool:
    """Letta stores a compaction summary as a user message holding a ``system_alert``."""
    if not text.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "system_alert"


def stored_user_texts(letta: Letta, conversation_id: str) -> list[str]:
    """The user texts the conversation holds, in the server's order (summaries left out)."""
    items = _by_date(letta.conversations.messages.list(conversation_id, order="asc", limit=1000))
    texts = [item_text(item) for item in items if item.message_type == "user_message"]
    return [text for text in texts if not is_summary(text)]


def _by_date(items: Any) -> list[Any]:
    """The server's list in the order the messages were stored.

    After a compaction Letta 0.16.8 renumbers only the messages still in context, so its
    ``asc`` listing can put a new message before older, evicted ones; ``date`` keeps order.
    """
    return sorted(items, key=lambda item: item.date)


def summaries(letta: Letta, conversation_id: str) -> list[str]:
    """The ids of the compaction summaries the conversation holds."""
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [
        item.id
        for item in items
        if item.message_type == "user_message" and is_summary(item_text(item))
    ]


def agent_conversations(letta: Letta, agent_id: str) -> list[str]:
    return [conv.id for conv in letta.conversations.list(agent_id=agent_id, limit=1000)]


def reconcile(expected: list[Expect], actual: list[str]) -> list[Expect] | None:
    """``expected`` updated by what the server holds, or ``None`` if it cannot match.

    ``actual`` must be ``expected`` with each maybe text present at most once. Maybe
    texts found become certain; those not found stay maybe (their run may still store
    them, in their place).
    """

    @cache
    def fit(i: int, j: int) -> tuple[Expect, ...] | None:
        if i == len(expected):
            return () if j == len(actual) else None
        want = expected[i]
        if j < len(actual) and actual[j] == want.text:
            rest = fit(i + 1, j + 1)
            if rest is not None:
                return (Expect(want.text), *rest)
        if not want.certain:
            rest = fit(i + 1, j)
            if rest is not None:
                return (want, *rest)
        return None

    found = fit(0, 0)
    return None if found is None else list(found)


def describe(expected: list[Expect], actual: list[str]) -> str:
    shown = [e.text if e.certain else f"{e.text} (maybe)" for e in expected]
    return f"expected {shown}, server holds {actual}"
