"""Send one turn to a Letta conversation and yield its stream, storing it exactly once.

A turn is POSTed once (the SDK's automatic retries are off for sends), turns of one
conversation inside this process run one at a time (`langchain_letta.locks`), and
a busy conversation (HTTP 409) is waited for within a bound. A turn whose outcome is
in doubt is never sent again blindly:

- a foreground stream that drops, or ends before its stop reason, is recovered from
  the server: the run is waited for and what it stored is yielded as the rest of the
  stream (Letta finishes a run whose client went away);
- a background stream resumes from its last `seq_id`;
- a turn that timed out raises `LettaTimeoutError` with `turn_stored` and is
  recorded in `langchain_letta.state.DOUBTFUL_TURNS`; the next call with the same
  content attaches to its run instead of sending it again;
- a retry whose send meets (HTTP 409) the run of the turn it retries, a first send
  that arrived after the retry looked for it, attaches to that run;
- a stream closed, abandoned or cancelled before its end cancels its run on the server.

The decisions are `langchain_letta.steps.turn_steps`; this module is its sync and
async plumbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import letta_client

from langchain_letta.draining import adrain_later, drain_later
from langchain_letta.errors import (
    LettaConnectionError,
    LettaConversationBusyError,
    LettaTimeoutError,
    translate_error,
)
from langchain_letta.events import GarbledStreamError, aiter_events, iter_events
from langchain_letta.locks import Holder, LockTimeoutError, abandon_quietly, current_owner
from langchain_letta.memory import SyncMemory
from langchain_letta.outcomes import held, incomplete
from langchain_letta.progress import StreamProgress
from langchain_letta.recovery import DROPS, Recovery
from langchain_letta.runs import Runs
from langchain_letta.state import DOUBTFUL_TURNS, LOCKS
from langchain_letta.steps import (
    BusyWait,
    EndedUnstored,
    FindRun,
    MetItsTurn,
    Recover,
    Resume,
    Step,
    TurnPlan,
    advance,
    turn_steps,
)
from langchain_letta.turns import DoubtfulTurn, keyed_otids, new_otids

if TYPE_CHECKING:
    from langchain_letta.conversation import Conversations

__all__ = ["TurnStreams", "identify"]

_KEYED_DEPTH = 100  # how far back a retry with an idempotency key looks for its turn
_TIMEOUTS = (httpx.TimeoutException, letta_client.APITimeoutError)
_NEVER_LEFT = (httpx.TransportError, letta_client.APIConnectionError)
"""What a send may fail with before its request left (see `never_left`)."""


def never_left(error: BaseException) -> bool:
    """Whether `error` (or what caused it) proves the request never reached the server.

    No connection was made (`ConnectError`, `ConnectTimeout`) or none was free in the
    pool (`PoolTimeout`): the server cannot have the turn.
    """
    seen: BaseException | None = error
    for _ in range(8):  # letta-client wraps httpx's error once or twice
        if seen is None:
            return False
        if isinstance(seen, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_CUT = (*DROPS, GarbledStreamError)


class TurnStreams:
    """Sends turns to Letta conversations and yields their streams, sync and async.

    Args:
        conversations: the clients, pages and memory checks to use; every wait of a
            turn (a busy conversation, the lock of another turn here, a run being
            recovered) is bounded by their `busy_timeout`.

    """

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations
        self.runs = Runs(conversations)
        self._recovery = Recovery(conversations, self.runs)

    def stream_turn(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        *,
        agent_id: str,
        memory: SyncMemory = "never",
        retry_of: DoubtfulTurn | None = None,
        fresh_blocks: list[Any] | None = None,
        owner: object | None = None,
        **options: Any,
    ) -> Generator[Any, None, None]:
        """Send one turn and yield Letta's stream events as they arrive.

        `messages` carry their `otid` (see `identify`); with `retry_of` the turn is
        first looked for on the server and, when found, its run is attached to
        instead of sending it again. First the conversation's prompt is brought in
        step with the agent's memory blocks as `memory` says (`fresh_blocks`: blocks
        this turn already read). `owner` is the thread the call came from (see
        `langchain_letta.locks`).
        """
        turn = _TurnState(self._conversations, conversation_id, messages, agent_id, retry_of)
        turn.background = bool(options.get("background"))
        turn.memory, turn.blocks, turn.options = memory, fresh_blocks, options
        holder = Holder(abandon=turn.abandon, owner=owner or current_owner())
        try:
            slot = LOCKS.acquire(conversation_id, holder, self._conversations.busy_timeout)
        except LockTimeoutError:
            raise turn.held() from None
        try:
            steps = turn_steps(turn)
            step = advance(steps, None)
            while step is not None:
                if isinstance(step, (FindRun, EndedUnstored)):
                    outcome = self._answer(step)
                else:
                    turn.failure = None
                    yield from self._events(step, turn, holder)
                    outcome = turn.failure
                step = advance(steps, outcome)
        except GeneratorExit:
            turn.abandon_unfinished()
            raise
        except (LettaConnectionError, LettaTimeoutError) as error:
            turn.record_doubt_unless_unstored(error)
            raise
        finally:
            LOCKS.release(slot, holder)

    async def astream_turn(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        *,
        agent_id: str,
        memory: SyncMemory = "never",
        retry_of: DoubtfulTurn | None = None,
        fresh_blocks: list[Any] | None = None,
        owner: object | None = None,
        **options: Any,
    ) -> AsyncGenerator[Any, None]:
        """Async twin of `stream_turn` (`owner`: the task the call came from)."""
        turn = _TurnState(self._conversations, conversation_id, messages, agent_id, retry_of)
        turn.background = bool(options.get("background"))
        turn.memory, turn.blocks, turn.options = memory, fresh_blocks, options
        holder = Holder(
            abandon=turn.abandon_on_loop(asyncio.get_running_loop()), owner=owner or current_owner()
        )
        try:
            slot = await LOCKS.aacquire(conversation_id, holder, self._conversations.busy_timeout)
        except LockTimeoutError:
            raise turn.held() from None
        try:
            steps = turn_steps(turn)
            step = advance(steps, None)
            while step is not None:
                if isinstance(step, (FindRun, EndedUnstored)):
                    outcome = await self._aanswer(step)
                else:
                    turn.failure = None
                    events = self._aevents(step, turn, holder)
                    try:
                        async for event in events:
                            yield event
                    finally:
                        await events.aclose()  # its response is closed now, not at GC
                    outcome = turn.failure
                step = advance(steps, outcome)
        except (GeneratorExit, asyncio.CancelledError):
            await turn.aabandon_unfinished()
            raise
        except (LettaConnectionError, LettaTimeoutError) as error:
            turn.record_doubt_unless_unstored(error)
            raise
        finally:
            LOCKS.release(slot, holder)

    # ------------------------------------------------------------------ one step

    def _answer(self, step: FindRun | EndedUnstored) -> Any:
        """The outcome of a question `step` asks of the server."""
        if isinstance(step, FindRun):
            return self.runs.find_run(step.turn, look_twice=step.look_twice)
        return self.runs.ended_unstored(step.run_id, step.turn)

    async def _aanswer(self, step: FindRun | EndedUnstored) -> Any:
        """Async twin of `_answer`."""
        if isinstance(step, FindRun):
            return await self.runs.afind_run(step.turn, look_twice=step.look_twice)
        return await self.runs.aended_unstored(step.run_id, step.turn)

    def _events(self, step: Step, turn: _TurnState, holder: Holder) -> Iterator[Any]:
        """The events a streaming `step` yields (a send leaves what cut it in `failure`)."""
        if isinstance(step, Recover):
            return self._recovery.recover(turn.conversation_id, turn.progress, step.run_id)
        if isinstance(step, Resume):
            return self._recovery.resume(
                turn.conversation_id, turn.messages, turn.progress, step.failure
            )
        return self._send(turn, holder)

    def _aevents(self, step: Step, turn: _TurnState, holder: Holder) -> AsyncGenerator[Any, None]:
        """Async twin of `_events`."""
        if isinstance(step, Recover):
            return self._recovery.arecover(turn.conversation_id, turn.progress, step.run_id)
        if isinstance(step, Resume):
            return self._recovery.aresume(
                turn.conversation_id, turn.messages, turn.progress, step.failure
            )
        return self._asend(turn, holder)

    def _send(self, turn: _TurnState, holder: Holder) -> Iterator[Any]:
        """Send the turn and relay its stream; what cut it goes to `turn.failure`."""
        try:
            response = self._post(turn)
            lines = response.iter_lines()
            with contextlib.ExitStack() as unfinished:
                unfinished.callback(response.close)  # a stream left before its end
                for event in turn.progress.track(iter_events(response, lines)):
                    if holder.abandoned:
                        return
                    yield event
                unfinished.pop_all()
            drain_later(response, lines)  # to its end, off the turn's path: it is pooled
            turn.failure = turn.failure_at_end(holder)
        except _TIMEOUTS as timeout:
            if not holder.abandoned:
                raise self.runs.timed_out(turn.as_doubtful(), turn.progress, timeout) from timeout
        except _CUT as drop:
            turn.failure = None if holder.abandoned else drop
        except MetItsTurn as met:
            turn.failure = met
        except LettaConversationBusyError:
            raise
        except Exception as error:
            raise translate_error(error) from error

    async def _asend(self, turn: _TurnState, holder: Holder) -> AsyncGenerator[Any, None]:
        """Async twin of `_send`."""
        try:
            response = await self._apost(turn)
            lines = response.iter_lines()
            async with contextlib.AsyncExitStack() as unfinished:
                unfinished.push_async_callback(response.close)
                async for event in turn.progress.atrack(aiter_events(response, lines)):
                    if holder.abandoned:
                        return
                    yield event
                unfinished.pop_all()
            await adrain_later(response, lines)
            turn.failure = turn.failure_at_end(holder)
        except _TIMEOUTS as timeout:
            if not holder.abandoned:
                error = await self.runs.atimed_out(turn.as_doubtful(), turn.progress, timeout)
                raise error from timeout
        except _CUT as drop:
            turn.failure = None if holder.abandoned else drop
        except MetItsTurn as met:
            turn.failure = met
        except (GeneratorExit, asyncio.CancelledError, LettaConversationBusyError):
            raise
        except Exception as error:
            raise translate_error(error) from error

    def _post(self, turn: _TurnState) -> Any:
        """POST the turn, waiting out a busy conversation; the caller closes the response."""
        conversations = self._conversations
        conversations.sync_memory(turn.memory, turn.agent_id, turn.conversation_id, turn.blocks)
        wait = BusyWait(conversations.busy_timeout)
        messages_api = conversations.send_client.conversations.messages
        while True:
            request = messages_api.with_streaming_response.create(
                turn.conversation_id,
                messages=turn.messages,  # type: ignore[arg-type]
                **turn.options,
            )
            try:
                turn.on_its_way = True  # a timeout from here on leaves it in doubt
                response = request.__enter__()  # sends it; its exit only closes the response
            except _NEVER_LEFT as error:
                turn.on_its_way = not never_left(error)
                raise
            except letta_client.ConflictError as error:
                turn.on_its_way = False  # refused: not stored
                self._raise_if_its_turn(turn, error)
                time.sleep(turn.pause_after(error, wait))
                continue
            return turn.posted(response)

    def _raise_if_its_turn(self, turn: _TurnState, error: letta_client.ConflictError) -> None:
        """Raise `MetItsTurn` when the run a retry met is the retried turn's own."""
        run_id = turn.run_maybe_retried(error)
        if run_id is None or turn.retry_of is None:
            return
        try:  # a failed look leaves the 409 what it was: a busy conversation
            self.runs.wait_run(run_id)
            retry_of = turn.retry_of
            found = self.runs.run_of(turn.conversation_id, retry_of.otids, retry_of.depth)
        except Exception:
            return
        if found is not None:
            raise MetItsTurn(found) from error

    async def _araise_if_its_turn(
        self, turn: _TurnState, error: letta_client.ConflictError
    ) -> None:
        """Async twin of `_raise_if_its_turn`."""
        run_id = turn.run_maybe_retried(error)
        if run_id is None or turn.retry_of is None:
            return
        try:  # a failed look leaves the 409 what it was: a busy conversation
            await self.runs.await_run(run_id)
            retry_of = turn.retry_of
            found = await self.runs.arun_of(turn.conversation_id, retry_of.otids, retry_of.depth)
        except Exception:
            return
        if found is not None:
            raise MetItsTurn(found) from error

    async def _apost(self, turn: _TurnState) -> Any:
        """Async twin of `_post`."""
        conversations = self._conversations
        await conversations.async_sync_memory(
            turn.memory, turn.agent_id, turn.conversation_id, turn.blocks
        )
        wait = BusyWait(conversations.busy_timeout)
        messages_api = conversations.async_send_client.conversations.messages
        while True:
            request = messages_api.with_streaming_response.create(
                turn.conversation_id,
                messages=turn.messages,  # type: ignore[arg-type]
                **turn.options,
            )
            try:
                turn.on_its_way = True  # a timeout from here on leaves it in doubt
                response = await request.__aenter__()  # sends it; its exit only closes it
            except _NEVER_LEFT as error:
                turn.on_its_way = not never_left(error)
                raise
            except letta_client.ConflictError as error:
                turn.on_its_way = False  # refused: not stored
                await self._araise_if_its_turn(turn, error)
                await asyncio.sleep(turn.pause_after(error, wait))
                continue
            return turn.posted(response)


def identify(
    conversation_id: str,
    payloads: list[dict[str, Any]],
    idempotency_key: str | None = None,
) -> tuple[list[dict[str, Any]], DoubtfulTurn | None]:
    """The turn's messages with their `otid` values, and the doubtful turn it retries.

    See `langchain_letta.turns`: a turn in doubt with the same content in the
    same conversation is taken over (its `otid` values reused); an idempotency
    key derives them; otherwise they are new.
    """
    if idempotency_key is not None:
        messages = keyed_otids(payloads, idempotency_key)
        keyed = DoubtfulTurn(conversation_id, messages, None, time.monotonic(), _KEYED_DEPTH)
        return messages, keyed
    doubtful = DOUBTFUL_TURNS.take(conversation_id, payloads)
    if doubtful is not None:
        return doubtful.payloads, doubtful
    return new_otids(payloads), None


class _TurnState(TurnPlan):
    """One turn on its way: its plan, its responses, and how to give it up."""

    def __init__(
        self,
        conversations: Conversations,
        conversation_id: str,
        messages: list[dict[str, Any]],
        agent_id: str,
        retry_of: DoubtfulTurn | None,
    ) -> None:
        super().__init__(conversation_id, messages, StreamProgress(agent_id), retry_of)
        self.conversations = conversations
        self.agent_id = agent_id
        self.responses: list[Any] = []
        self.on_its_way = False
        """A POST of the turn went out and was not refused: the server may have it."""
        self.memory: SyncMemory = "never"
        """When to check the agent's memory blocks before sending."""
        self.blocks: list[Any] | None = None
        """Memory blocks this turn already read, if any."""
        self.options: dict[str, Any] = {}

    def posted(self, response: Any) -> Any:
        """Note that the turn was sent, with `response` its stream."""
        self.sent = True
        self.responses.append(response)
        return response

    def failure_at_end(self, holder: Holder) -> BaseException | None:
        """What cut a stream that ended: `None` when it was whole or given up."""
        if self.progress.finished or holder.abandoned:
            return None
        return incomplete(self.conversations.client.base_url)

    def pause_after(self, error: letta_client.ConflictError, wait: BusyWait) -> float:
        """Seconds to pause after a 409; a turn never sent keeps the turn it retried."""
        try:
            return wait.after_conflict(error)
        except LettaConversationBusyError:
            self.record_doubt(self.retry_of)  # never sent
            raise

    def held(self) -> LettaConversationBusyError:
        """The error for a lock held too long here; a retry keeps the turn it retried."""
        self.record_doubt(self.retry_of)
        return held(self.conversations.busy_timeout)

    def record_doubt(self, turn: DoubtfulTurn | None = None) -> None:
        """Remember the turn (or `turn`) as in doubt, for the next call to attach to.

        A retry that ends before it sent anything keeps the turn it retried.
        """
        if turn is None and (self.on_its_way or self.progress.run_id):
            turn = self.as_doubtful()
        turn = turn or self.retry_of
        if turn is not None:
            DOUBTFUL_TURNS.record(turn)

    def record_doubt_unless_unstored(self, error: BaseException) -> None:
        """Keep the turn in doubt unless `error` says the server does not have it."""
        if getattr(error, "turn_stored", None) is not False:
            self.record_doubt()

    def abandon_unfinished(self) -> None:
        """Give the turn up if its stream did not reach the run's stop reason."""
        if not self.progress.finished:
            self.abandon()

    async def aabandon_unfinished(self) -> None:
        """Async twin of `abandon_unfinished`."""
        if not self.progress.finished:
            await self.aabandon()

    def abandon(self) -> None:
        """Close the stream and cancel this turn's own run (no other); keep it in doubt."""
        for response in self.responses:
            abandon_quietly(response.close)
        self.cancel_run()

    def abandon_on_loop(self, loop: asyncio.AbstractEventLoop) -> Any:
        """`abandon` for an async turn, callable from any thread (see `locks`)."""

        def abandon() -> None:
            if loop.is_closed():  # the stream's event loop is gone: cancel from here
                self.cancel_run()
            else:
                loop.call_soon_threadsafe(lambda: loop.create_task(self.aabandon()))

        return abandon

    def cancel_run(self) -> None:
        """Cancel this turn's own run on the server (no other); keep the turn in doubt."""
        run_id = self.progress.run_id
        if run_id and not self.progress.finished:
            client = self.conversations.send_client
            abandon_quietly(lambda: client.agents.messages.cancel(self.agent_id, run_ids=[run_id]))
        self.record_doubt()

    async def aabandon(self) -> None:
        """Async twin of `abandon`."""
        with contextlib.suppress(Exception):
            for response in self.responses:
                await response.close()
        run_id = self.progress.run_id
        if run_id and not self.progress.finished:
            client = self.conversations.async_send_client
            with contextlib.suppress(Exception):
                await client.agents.messages.cancel(self.agent_id, run_ids=[run_id])
        self.record_doubt()
