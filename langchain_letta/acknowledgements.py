"""Structured-output calls answered inside their turn, so the session is free after it.

Letta waits for the result of a client-side tool call, and a structured-output call
is one. It is answered in the same call with a short acknowledgement the agent
replies to (`langchain_letta.structured`). One that could not be answered is
answered by the next turn in that conversation, before it is sent.
"""

from __future__ import annotations

from typing import Any

from langchain_letta.calls import Call
from langchain_letta.conversation import Conversations
from langchain_letta.errors import LettaConnectionError, LettaTimeoutError
from langchain_letta.state import UNANSWERED
from langchain_letta.structured import acknowledgement, pending_structured_calls
from langchain_letta.turn_stream import TurnStreams, identify

__all__ = ["Acknowledgements"]

_NEWEST = 5  # how many of the newest messages hold the pending call


class Acknowledgements:
    """Answers the structured-output calls of a model's turns, sync and async."""

    def __init__(self, conversations: Conversations, turns: TurnStreams) -> None:
        self._conversations = conversations
        self._turns = turns

    def answer_pending(self, conversation_id: str, call: Call) -> frozenset[str]:
        """Answer a structured-output call an earlier turn left waiting; the ids answered."""
        tool_name = UNANSWERED.take(conversation_id)
        if tool_name is None:
            return frozenset()
        self._turns.runs.wait_idle(conversation_id)  # the structured call's run may be going
        newest = self._conversations.listing.newest(conversation_id, _NEWEST)
        ids = pending_structured_calls(newest, tool_name)
        if ids:
            try:
                self.send(conversation_id, ids, call)
            except Exception:
                UNANSWERED.note(conversation_id, tool_name)
                raise
        return frozenset(ids)

    async def aanswer_pending(self, conversation_id: str, call: Call) -> frozenset[str]:
        """Async twin of `answer_pending`."""
        tool_name = UNANSWERED.take(conversation_id)
        if tool_name is None:
            return frozenset()
        await self._turns.runs.await_idle(conversation_id)
        newest = await self._conversations.listing.anewest(conversation_id, _NEWEST)
        ids = pending_structured_calls(newest, tool_name)
        if ids:
            try:
                await self.asend(conversation_id, ids, call)
            except Exception:
                UNANSWERED.note(conversation_id, tool_name)
                raise
        return frozenset(ids)

    def answer(self, conversation_id: str, ids: list[str], call: Call) -> None:
        """Answer the calls `ids` a turn just ended with; if that fails, the next turn does."""
        if not ids:
            return
        try:
            self.send(conversation_id, ids, call)
        except (LettaConnectionError, LettaTimeoutError):
            UNANSWERED.note(conversation_id, str(call.structured))

    async def aanswer(self, conversation_id: str, ids: list[str], call: Call) -> None:
        """Async twin of `answer`."""
        if not ids:
            return
        try:
            await self.asend(conversation_id, ids, call)
        except (LettaConnectionError, LettaTimeoutError):
            UNANSWERED.note(conversation_id, str(call.structured))

    def send(self, conversation_id: str, ids: list[str], call: Call) -> None:
        """Send the acknowledgement of `ids` as a turn of the package's own; drop its events."""
        sent, _ = identify(conversation_id, acknowledgement(ids))
        events = self._turns.stream_turn(
            conversation_id, sent, owner=call.owner, **_without_tools(call.options)
        )
        for _event in events:
            pass

    async def asend(self, conversation_id: str, ids: list[str], call: Call) -> None:
        """Async twin of `send`."""
        sent, _ = identify(conversation_id, acknowledgement(ids))
        events = self._turns.astream_turn(
            conversation_id, sent, owner=call.owner, **_without_tools(call.options)
        )
        async for _event in events:
            pass


def _without_tools(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != "client_tools"}
