"""Structured output over Letta's client-side tools, without leaving a session waiting.

`with_structured_output` offers the schema to the agent as a client-side tool. Letta
then waits for that tool's result before the conversation takes another message, so the
call answers it itself with `ACKNOWLEDGEMENT`. When that answer cannot be sent
(the structured call timed out, its stream dropped, the answer itself failed), the
conversation is noted (in `langchain_letta.state.UNANSWERED`), and the next turn there
answers the pending call first if it is still pending (one listing request, only then).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_letta.lru import LRU

__all__ = ["ACKNOWLEDGEMENT", "UnansweredCalls", "acknowledgement", "pending_structured_calls"]

ACKNOWLEDGEMENT = "Structured output received."


def acknowledgement(call_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The message that answers the structured-output calls `call_ids`."""
    returns = [
        {
            "type": "tool",
            "tool_call_id": call_id,
            "tool_return": ACKNOWLEDGEMENT,
            "status": "success",
        }
        for call_id in call_ids
    ]
    return [{"type": "approval", "approvals": returns}]


def pending_structured_calls(newest: Sequence[Any], tool_name: str) -> list[str]:
    """Ids of `tool_name` calls the conversation still waits for, from its newest items.

    `newest` is a page of the conversation, newest first. The conversation waits when
    its newest agent item is an approval request for `tool_name` alone.
    """
    for item in newest:
        kind = getattr(item, "message_type", None)
        if kind == "approval_request_message":
            calls = getattr(item, "tool_calls", None) or [getattr(item, "tool_call", None)]
            calls = [call for call in calls if call is not None]
            if calls and all(getattr(call, "name", None) == tool_name for call in calls):
                return [str(call.tool_call_id) for call in calls]
            return []
        if kind in {"assistant_message", "approval_response_message", "user_message"}:
            return []
    return []


class UnansweredCalls:
    """Conversations that may wait for a structured-output answer, and its tool name.

    Args:
        budget: how many conversations to keep.

    """

    def __init__(self, budget: int) -> None:
        self._tools: LRU[str, str] = LRU(budget)

    def note(self, conversation_id: str, tool_name: str) -> None:
        """Remember that the conversation may wait for an answer to `tool_name`."""
        self._tools[conversation_id] = tool_name

    def take(self, conversation_id: str) -> str | None:
        """The tool the conversation may wait for (forgotten here), if any."""
        return self._tools.pop(conversation_id, None)

    def clear(self) -> None:
        """Forget every conversation."""
        self._tools.clear()
