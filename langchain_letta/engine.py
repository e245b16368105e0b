"""The turn engine: one chat-model call as one Letta turn, from its input to its chunks.

One turn's path: `prepare_call` checks the call and converts its input
(`langchain_letta.calls`); the agent is read once (`langchain_letta.agent_info`);
`Placement` picks the conversation; a structured-output call an earlier turn left
waiting is answered (`langchain_letta.acknowledgements`); `Turn.plan` keeps only
what the conversation has not stored; `TurnStreams` sends it and yields Letta's
events (`langchain_letta.turn_stream`); `TurnChunker` maps them to LangChain
chunks (`langchain_letta.messages`); the closing chunk records what the turn left
pending.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk, BaseMessage

from langchain_letta.acknowledgements import Acknowledgements
from langchain_letta.agent_info import AgentInfo
from langchain_letta.calls import Call, prepare_call
from langchain_letta.connection import Endpoint
from langchain_letta.conversation import Conversations
from langchain_letta.errors import LettaNotFoundError, LettaPendingApprovalError
from langchain_letta.forks import record_tip, replay_key
from langchain_letta.messages import (
    TurnChunker,
    client_return_ids,
    split_at_stored,
    to_letta_messages,
)
from langchain_letta.outcomes import raise_if_stopped_by_error
from langchain_letta.placement import Placed, Placement
from langchain_letta.plans import arun, run
from langchain_letta.sessions import SessionResolver
from langchain_letta.state import MEMORY_CHECKS, PENDING, UNANSWERED
from langchain_letta.tool_choice import reask
from langchain_letta.turn_stream import TurnStreams, identify
from langchain_letta.turns import DoubtfulTurn, keyed_otids

if TYPE_CHECKING:
    from langchain_letta.chat_models import ChatLetta

__all__ = ["Turn", "TurnEngine"]

_FOLLOWING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "langchain_letta_following", default=False
)  # a turn re-sent once to its session's conversation after a 404 (no second follow)


@dataclass
class Turn:
    """One turn, planned: where it goes, what is sent, and how its stream is mapped."""

    placed: Placed
    call: Call
    payloads: list[dict[str, Any]]
    chunker: TurnChunker
    answered: frozenset[str] = frozenset()
    """Structured-output calls answered before this turn was sent."""
    started: bool = False
    """Whether a chunk of the turn reached the caller."""
    blocks: list[Any] | None = field(default=None, repr=False)
    """The agent's memory blocks, when this turn read them."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """`payloads` with their `otid` values."""
    retry_of: DoubtfulTurn | None = None
    """The turn in doubt this one retries."""

    @classmethod
    def plan(cls, placed: Placed, call: Call, agent_id: str, model_name: str) -> Turn:
        """Send only what the conversation has not stored (`otid` values come later)."""
        conversation_id = placed.conversation_id
        anchor, unsent = split_at_stored(placed.messages, conversation_id)
        payloads = call.payloads  # converted once, when the split is the call's own
        if anchor is not call.anchor or len(unsent) != len(call.unsent):
            payloads = to_letta_messages(unsent, anchor=anchor)
        # calls an earlier turn left waiting are answered first (langchain_letta.approvals)
        payloads = PENDING.answer_waiting_calls(conversation_id, payloads)
        chunker = TurnChunker(
            conversation_id,
            agent_id,
            model_name=model_name,
            client_returns=client_return_ids(payloads),
            client_tools=frozenset(tool["name"] for tool in call.options.get("client_tools") or []),
        )
        return cls(placed, call, payloads, chunker)

    @property
    def conversation_id(self) -> str:
        """The conversation the turn is sent to."""
        return self.placed.conversation_id

    def feed(self, event: Any) -> list[AIMessageChunk]:
        """The chunks of one Letta event."""
        chunks = self.chunker.feed(event)
        self.started = self.started or bool(chunks)
        return chunks

    def take_unanswered(self) -> list[str]:
        """Ids of the structured-output calls this turn ended with that need answering.

        The caller answers them, so the turn no longer leaves them pending.
        """
        structured = self.call.structured
        if structured is None or self.chunker.stop_reason != "requires_approval":
            return []
        calls = self.chunker.client_calls
        if not calls or any(name != structured for _call_id, name in calls):
            return []
        ids = [call_id for call_id, _name in calls if call_id not in self.answered]
        if ids:
            self.chunker.requests.clear()
        return ids

    def note_unanswered(self) -> None:
        """A structured-output call that may have left its conversation waiting."""
        if self.call.structured is not None:
            UNANSWERED.note(self.conversation_id, self.call.structured)

    def close(self) -> AIMessageChunk:
        """The closing chunk (a history under `RunnableWithMessageHistory` keeps its read)."""
        if self.call.history is not None:
            self.call.history.repeat_last_read()
        record_tip(self.conversation_id, self.chunker.last_message_id)  # langchain_letta.forks
        waiting = self.chunker.requests if self.chunker.stop_reason == "requires_approval" else []
        PENDING.record(self.conversation_id, waiting)  # langchain_letta.approvals
        chunker = self.chunker
        raise_if_stopped_by_error(chunker.stop_reason, chunker.run_id, self.conversation_id)
        return self.chunker.finish()


class TurnEngine:
    """Runs the turns of one `ChatLetta`, sync and async."""

    def __init__(self, model: ChatLetta, conversations: Conversations) -> None:
        self._model = model
        self.conversations = conversations
        self.turns = TurnStreams(conversations)
        self.agent = AgentInfo(conversations, model.agent_id)
        resolver = SessionResolver(
            conversations.client,
            model.agent_id,
            model.session_store,
            async_client=conversations.given_async_client,
        )
        fixed = (model.conversation_id, model.session_id)
        self.placement = Placement(conversations, model.agent_id, resolver, fixed, model.auxiliary)
        self._acknowledgements = Acknowledgements(conversations, self.turns)

    @classmethod
    def connect(cls, model: ChatLetta, endpoint: Endpoint) -> TurnEngine:
        """The engine of `model` over its clients, or shared ones (`langchain_letta.clients`)."""
        conversations = Conversations.connect(
            endpoint,
            timeout=model.timeout,
            max_retries=model.max_retries,
            busy_timeout=model.busy_timeout,
            client=model.client,
            async_client=model.async_client,
        )
        return cls(model, conversations)

    def model_label(self) -> str:
        """The model's name for traces: as given, else the agent's handle, else its id."""
        return self._model.model_name or self.agent.model or self._model.agent_id

    def stream(
        self,
        messages: Sequence[BaseMessage],
        kwargs: dict[str, Any],
        stop: list[str] | None = None,
    ) -> Iterator[AIMessageChunk]:
        """The chunks of one turn, as Letta streams it (`stop` is said to be ignored)."""
        turn = self._open(messages, kwargs, stop)
        again: str | None = None
        try:
            yield from self._relay(turn)
            self._acknowledgements.answer(turn.conversation_id, turn.take_unanswered(), turn.call)
        except LettaNotFoundError:
            if not self.placement.may_follow(turn.placed, turn.started or _FOLLOWING.get()):
                raise
            again = "follow"  # the session moved on (cleared elsewhere): follow it once
        except LettaPendingApprovalError:
            if turn.started or _FOLLOWING.get() or not self._recover_pending(turn):
                raise
            again = "answer"  # calls left pending by another process: answer them, once
        finally:
            self.placement.release(turn.placed)
        if again is None:
            yield turn.close()
            return
        if again == "follow":
            self.placement.follow(turn.placed)
        token = _FOLLOWING.set(True)
        try:
            yield from self.stream(messages, kwargs, stop)
        finally:
            _FOLLOWING.reset(token)

    async def astream(
        self,
        messages: Sequence[BaseMessage],
        kwargs: dict[str, Any],
        stop: list[str] | None = None,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of `stream`."""
        turn = await self._aopen(messages, kwargs, stop)
        again: str | None = None
        try:
            async for chunk in self._arelay(turn):
                yield chunk
            ids = turn.take_unanswered()
            await self._acknowledgements.aanswer(turn.conversation_id, ids, turn.call)
        except LettaNotFoundError:
            if not self.placement.may_follow(turn.placed, turn.started or _FOLLOWING.get()):
                raise
            again = "follow"
        except LettaPendingApprovalError:
            if turn.started or _FOLLOWING.get() or not await self._arecover_pending(turn):
                raise
            again = "answer"
        finally:
            await self.placement.arelease(turn.placed)
        if again is None:
            yield turn.close()
            return
        if again == "follow":
            await self.placement.afollow(turn.placed)
        token = _FOLLOWING.set(True)
        try:
            async for chunk in self.astream(messages, kwargs, stop):
                yield chunk
        finally:
            _FOLLOWING.reset(token)

    def _open(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], stop: list[str] | None
    ) -> Turn:
        """The turn of a call, checked, placed and planned; nothing of it is sent yet."""
        messages = reask(messages, kwargs.get("letta_forced_tools"))  # langchain_letta.tool_choice
        call = prepare_call(messages, kwargs, self._model, stop)
        blocks = self.agent.read()
        self.agent.check_size(call.payloads)
        placed = self.placement.place(call.route, messages)
        blocks = blocks or _prefetched(call, placed.conversation_id)  # read with the history
        answered = self._acknowledgements.answer_pending(placed.conversation_id, call)
        return self._plan(placed, call, answered, blocks)

    async def _aopen(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], stop: list[str] | None
    ) -> Turn:
        """Async twin of `_open`."""
        messages = reask(messages, kwargs.get("letta_forced_tools"))
        call = prepare_call(messages, kwargs, self._model, stop)
        blocks = await self.agent.aread()
        self.agent.check_size(call.payloads)
        placed = await self.placement.aplace(call.route, messages)
        blocks = blocks or _prefetched(call, placed.conversation_id)  # read with the history
        answered = await self._acknowledgements.aanswer_pending(placed.conversation_id, call)
        return self._plan(placed, call, answered, blocks)

    def _relay(self, turn: Turn) -> Iterator[AIMessageChunk]:
        """Send the turn and yield its chunks."""
        call = turn.call
        events = self.turns.stream_turn(
            turn.conversation_id,
            turn.sent,
            retry_of=turn.retry_of,
            fresh_blocks=turn.blocks,
            owner=call.owner,
            **call.options,
        )
        try:
            for event in events:
                yield from turn.feed(event)
        except BaseException:
            turn.note_unanswered()
            raise
        finally:
            events.close()

    async def _arelay(self, turn: Turn) -> AsyncIterator[AIMessageChunk]:
        """Async twin of `_relay`."""
        call = turn.call
        events = self.turns.astream_turn(
            turn.conversation_id,
            turn.sent,
            retry_of=turn.retry_of,
            fresh_blocks=turn.blocks,
            owner=call.owner,
            **call.options,
        )
        try:
            async for event in events:
                for chunk in turn.feed(event):
                    yield chunk
        except BaseException:
            turn.note_unanswered()
            raise
        finally:
            await events.aclose()

    def _plan(
        self, placed: Placed, call: Call, answered: frozenset[str], blocks: list[Any] | None
    ) -> Turn:
        turn = Turn.plan(placed, call, self._model.agent_id, call.model or self.model_label())
        turn.answered, turn.blocks = answered, blocks
        turn.sent, turn.retry_of = identify(placed.conversation_id, turn.payloads, call.key)
        if turn.retry_of is None and (
            first_step := replay_key(placed.conversation_id, placed.messages)
        ):
            turn.sent = keyed_otids(turn.payloads, first_step)  # a replay is known anywhere
        return turn

    def _recover_pending(self, turn: Turn) -> bool:
        """Learn the calls the conversation waits for (see `PendingCalls.recovering`)."""
        tools = turn.chunker.client_tools or frozenset()
        return run(PENDING.recovering(turn.conversation_id, tools), self.conversations.client)

    async def _arecover_pending(self, turn: Turn) -> bool:
        """Async twin of `_recover_pending`."""
        tools = turn.chunker.client_tools or frozenset()
        plan = PENDING.recovering(turn.conversation_id, tools)
        return await arun(plan, self.conversations.async_client)


def _prefetched(call: Call, conversation_id: str) -> list[Any] | None:
    """Blocks the chain's history read fetched for this turn (`langchain_letta.prefetch`)."""
    MEMORY_CHECKS.turn_mode(conversation_id, call.options["memory"])
    take = getattr(call.history, "take_prefetched_blocks", None)
    return take(conversation_id) if take is not None else None
