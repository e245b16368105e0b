"""Turns and pages of Letta conversations over letta-client, sync and async.

One idea: talk to a conversation safely. A turn is POSTed once (the SDK's automatic
retries are off for sends), turns of one conversation inside this process run one at a
time, a busy conversation (HTTP 409) is waited for within a bound, and every error
leaves as a langchain-letta exception.

A turn whose outcome is in doubt is never sent again blindly:

- a foreground stream that drops, or ends before its stop reason, is recovered from
  the server: the run is waited for and what it stored is yielded as the rest of the
  stream (Letta finishes a run whose client went away);
- a background stream resumes from its last ``seq_id``;
- a turn that timed out raises :class:`~langchain_letta.errors.LettaTimeoutError` with
  ``turn_stored`` and is recorded in :data:`~langchain_letta.state.DOUBTFUL_TURNS`; the
  next call with the same content attaches to its run instead of sending it again;
- a stream closed, abandoned or cancelled before its end cancels its run on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
)
from types import SimpleNamespace
from typing import Any, Literal

import httpx
import letta_client
from letta_client import AsyncLetta, Letta

from langchain_letta.clients import for_running_loop
from langchain_letta.errors import (
    LettaConnectionError,
    LettaConversationBusyError,
    LettaIncompleteStreamError,
    LettaPendingApprovalError,
    LettaRunError,
    LettaTimeoutError,
    translate_error,
)
from langchain_letta.events import GarbledStreamError, aiter_events, iter_events, letta_models
from langchain_letta.locks import Holder, LockTimeoutError, abandon_quietly, current_owner
from langchain_letta.memory import SyncMemory, behind, system_prompt
from langchain_letta.messages import AGENT_SIDE
from langchain_letta.paging import MessageListing
from langchain_letta.state import DOUBTFUL_TURNS, LOCKS, MEMORY_CHECKS
from langchain_letta.turns import DoubtfulTurn, keyed_otids, new_otids

__all__ = ["BLOCKS", "Conversations", "Order"]

Order = Literal["asc", "desc"]

BLOCKS: list[Any] = ["agent.blocks"]  # an agent read that carries only its memory blocks
_BUSY_POLL_FIRST = 0.2
_BUSY_POLL_MAX = 2.0


_DROPS = (httpx.TransportError, letta_client.APIConnectionError)
_RESUME_ATTEMPTS = 8
_RESUME_PAUSE_MAX = 2.0
_RESUME_PAUSE = 0.25
_STORED_CHECK_DEPTH = 10
_RUN_POLL_FIRST = 0.1
_RUN_POLL_MAX = 1.0
_RUN_MESSAGES = 1000
_RUNNING = frozenset({"created", "running", None})
_ENDED_BADLY = frozenset({"failed", "cancelled"})
_SETTLE = 1.0  # seconds between two looks for a send that may still be on its way
_KEYED_DEPTH = 100  # how far back a retry with an idempotency key looks for its turn
_TEXT_FIELDS = {"assistant_message": "content", "reasoning_message": "reasoning"}


class _Progress:
    """How far a turn's stream got, so a resumed stream yields no event twice."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.run_id: str | None = None
        self.seq_id = 0
        self.closing_seen: set[str] = set()
        self.events = 0
        self.shown: dict[tuple[str, str], str] = {}

    def _fresh(self, event: Any) -> bool:
        self.run_id = getattr(event, "run_id", None) or self.run_id
        kind = str(getattr(event, "message_type", ""))
        seq_id = getattr(event, "seq_id", None)
        if seq_id is not None:
            if seq_id <= self.seq_id:
                return False
            self.seq_id = seq_id
        elif kind in {"stop_reason", "usage_statistics"}:
            if kind in self.closing_seen:
                return False
            self.closing_seen.add(kind)
        self.events += 1
        item_id = getattr(event, "id", None)
        if item_id and kind in AGENT_SIDE:
            self.shown[(item_id, kind)] = self.shown.get((item_id, kind), "") + _text(event)
        MEMORY_CHECKS.observe(self.agent_id, event)
        return True

    def unseen(self, items: Iterable[Any]) -> Iterator[Any]:
        """The parts of a run's stored ``items`` that the stream did not show yet.

        An item shown in full is skipped; one shown in part (token deltas) yields the
        rest of its text; the turn's own input is skipped.
        """
        for item in items:
            kind = str(getattr(item, "message_type", ""))
            if kind not in AGENT_SIDE:
                continue
            shown = self.shown.get((getattr(item, "id", ""), kind))
            if shown is None:
                yield item
                continue
            field_name = _TEXT_FIELDS.get(kind)
            full = _text(item)
            if field_name and full.startswith(shown) and len(full) > len(shown):
                yield item.model_copy(update={field_name: full[len(shown) :]})

    @property
    def finished(self) -> bool:
        """Whether the run's stop reason arrived (only usage may be missing after it)."""
        return "stop_reason" in self.closing_seen

    def track(self, stream: Iterable[Any]) -> Iterator[Any]:
        return (event for event in stream if self._fresh(event))

    async def atrack(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        async for event in stream:
            if self._fresh(event):
                yield event

    def resume_args(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Arguments of the resume request: by run id, else by the turn's first otid."""
        found: dict[str, Any] = {"starting_after": self.seq_id, "include_pings": True}
        if self.run_id:
            found["run_id"] = self.run_id
        elif messages and messages[0].get("otid"):
            found["otid"] = messages[0]["otid"]
        return found


def _classify_conflict(error: letta_client.ConflictError) -> None:
    """Raise at once for a 409 that waiting cannot cure (a pending tool approval)."""
    body = error.body if isinstance(error.body, dict) else {}
    detail = str(body.get("detail") or body.get("message") or error.message)
    if "approval" in detail.lower():
        raise LettaPendingApprovalError(detail, response=error.response, body=error.body) from error


class Conversations:
    """Sends turns to and pages messages of Letta conversations.

    Args:
        client: the sync letta-client.
        async_client: the async letta-client (one built by the package has a copy per
            event loop, so a model outlives ``asyncio.run()``).
        busy_timeout: seconds any wait of a turn may last (a busy conversation, the
            lock of another turn here, a run being recovered) before it gives up.

    """

    def __init__(
        self,
        client: Letta,
        async_client: AsyncLetta,
        busy_timeout: float,
    ) -> None:
        self._send_client = client.with_options(max_retries=0)
        self.client = client
        self._async_client = async_client
        self._listing = MessageListing(client, async_client)
        self.busy_timeout = busy_timeout

    @property
    def async_client(self) -> AsyncLetta:
        """The async letta-client for the running event loop."""
        return for_running_loop(self._async_client)

    @property
    def _async_send_client(self) -> AsyncLetta:
        return self.async_client.with_options(max_retries=0)

    # ------------------------------------------------------------------------ turns

    def identify(
        self,
        conversation_id: str,
        payloads: list[dict[str, Any]],
        idempotency_key: str | None = None,
    ) -> tuple[list[dict[str, Any]], DoubtfulTurn | None]:
        """The turn's messages with their ``otid`` values, and the doubtful turn it retries.

        See :mod:`langchain_letta.turns`: a turn in doubt with the same content in the
        same conversation is taken over (its ``otid`` values reused); an idempotency
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

        ``messages`` carry their ``otid`` (see :meth:`identify`); with ``retry_of`` the
        turn is first looked for on the server and, when found, its run is attached to
        instead of sending it again. First the conversation's prompt is brought in step
        with the agent's memory blocks as ``memory`` says (``fresh_blocks``: blocks this
        turn already read, so they are not read again). ``owner`` is the thread the
        call came from (see :mod:`langchain_letta.locks`).
        """
        turn = _TurnState(self, conversation_id, messages, agent_id)
        turn.retry_of = retry_of
        holder = Holder(abandon=turn.abandon, owner=owner or current_owner())
        try:
            slot = LOCKS.acquire(conversation_id, holder, self.busy_timeout)
        except LockTimeoutError:
            turn.keep(retry_of)
            raise _held(self.busy_timeout) from None
        progress = turn.progress
        try:
            if retry_of is not None:
                run_id = self._find_run(conversation_id, retry_of, settle=True)
                if run_id is not None and not self._ended_unstored(run_id, retry_of):
                    progress.run_id = run_id
                    yield from self._recover(conversation_id, progress, run_id)
                    return
                if run_id is not None:
                    turn.messages = messages = new_otids(messages)  # its otid names that run
            try:
                try:
                    response = self._send(
                        conversation_id, messages, (agent_id, memory, fresh_blocks), options
                    )
                except LettaConversationBusyError:
                    turn.keep(retry_of)  # never sent
                    raise
                turn.sent = True
                turn.responses.append(response)
                with contextlib.closing(response):
                    for event in progress.track(iter_events(response)):
                        if holder.abandoned:
                            return
                        yield event
                if progress.finished or holder.abandoned:
                    return
                failure: BaseException = LettaIncompleteStreamError(
                    message="The reply stream ended before the run's stop reason.",
                    request=_request(self.client),
                )
            except (httpx.TimeoutException, letta_client.APITimeoutError) as timeout:
                if holder.abandoned:
                    return
                raise self._timed_out(conversation_id, messages, progress, timeout) from timeout
            except (*_DROPS, GarbledStreamError) as drop:
                if holder.abandoned:
                    return
                failure = drop
            except LettaConversationBusyError:
                raise
            except Exception as error:
                raise translate_error(error) from error
            if options.get("background"):
                yield from self._resume(conversation_id, messages, progress, failure)
                return
            run_id = progress.run_id or self._find_run(
                conversation_id, turn.as_doubtful(), settle=not turn.sent
            )
            if run_id is None:
                raise _unrecovered(failure, stored=False if turn.sent else None)
            yield from self._recover(conversation_id, progress, run_id)
        except GeneratorExit:
            if not progress.finished:
                turn.abandon()
            raise
        except (LettaConnectionError, LettaTimeoutError) as error:
            if getattr(error, "turn_stored", None) is not False:
                turn.keep()
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
        """Async twin of :meth:`stream_turn` (``owner``: the task the call came from)."""
        turn = _TurnState(self, conversation_id, messages, agent_id)
        turn.retry_of = retry_of
        loop = asyncio.get_running_loop()

        def abandon() -> None:
            if loop.is_closed():  # the stream's event loop is gone: cancel from here
                turn.cancel_run()
            else:
                loop.call_soon_threadsafe(lambda: loop.create_task(turn.aabandon()))

        holder = Holder(abandon=abandon, owner=owner or current_owner())
        try:
            slot = await LOCKS.aacquire(conversation_id, holder, self.busy_timeout)
        except LockTimeoutError:
            turn.keep(retry_of)
            raise _held(self.busy_timeout) from None
        progress = turn.progress
        try:
            if retry_of is not None:
                run_id = await self._afind_run(conversation_id, retry_of, settle=True)
                if run_id is not None and not await self._aended_unstored(run_id, retry_of):
                    progress.run_id = run_id
                    async for event in self._arecover(conversation_id, progress, run_id):
                        yield event
                    return
                if run_id is not None:
                    turn.messages = messages = new_otids(messages)
            try:
                try:
                    response = await self._asend(
                        conversation_id, messages, (agent_id, memory, fresh_blocks), options
                    )
                except LettaConversationBusyError:
                    turn.keep(retry_of)
                    raise
                turn.sent = True
                turn.responses.append(response)
                try:
                    async for event in progress.atrack(aiter_events(response)):
                        if holder.abandoned:
                            return
                        yield event
                finally:
                    await response.close()
                if progress.finished or holder.abandoned:
                    return
                failure: BaseException = LettaIncompleteStreamError(
                    message="The reply stream ended before the run's stop reason.",
                    request=_request(self.client),
                )
            except (httpx.TimeoutException, letta_client.APITimeoutError) as timeout:
                if holder.abandoned:
                    return
                error = await self._atimed_out(conversation_id, messages, progress, timeout)
                raise error from timeout
            except (*_DROPS, GarbledStreamError) as drop:
                if holder.abandoned:
                    return
                failure = drop
            except (GeneratorExit, asyncio.CancelledError, LettaConversationBusyError):
                raise
            except Exception as error:
                raise translate_error(error) from error
            if options.get("background"):
                async for event in self._aresume(conversation_id, messages, progress, failure):
                    yield event
                return
            run_id = progress.run_id or await self._afind_run(
                conversation_id, turn.as_doubtful(), settle=not turn.sent
            )
            if run_id is None:
                raise _unrecovered(failure, stored=False if turn.sent else None)
            async for event in self._arecover(conversation_id, progress, run_id):
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            if not progress.finished:
                await turn.aabandon()
            raise
        except (LettaConnectionError, LettaTimeoutError) as error:
            if getattr(error, "turn_stored", None) is not False:
                turn.keep()
            raise
        finally:
            LOCKS.release(slot, holder)

    # ------------------------------------------------------------------------ recovery

    def _resume(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: _Progress,
        dropped: BaseException,
    ) -> Iterator[Any]:
        """Resume a background run's stream from its last ``seq_id`` until its end."""
        failures = 0
        while failures < _RESUME_ATTEMPTS and not progress.finished:
            time.sleep(min(_RESUME_PAUSE * failures, _RESUME_PAUSE_MAX))
            seen = progress.events
            try:
                with self._send_client.conversations.messages.with_streaming_response.stream(
                    conversation_id, **progress.resume_args(messages)
                ) as response:
                    yield from progress.track(iter_events(response))
                if progress.finished:
                    return
                failures += 1
            except (*_DROPS, GarbledStreamError, letta_client.NotFoundError) as drop:
                dropped = drop  # 404: the run is not saved yet
                failures = 0 if progress.events > seen else failures + 1
            except Exception as error:
                raise translate_error(error) from error
        if not progress.finished:
            raise _unrecovered(dropped, stored=True if progress.run_id else None)

    async def _aresume(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: _Progress,
        dropped: BaseException,
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`_resume`."""
        failures = 0
        while failures < _RESUME_ATTEMPTS and not progress.finished:
            await asyncio.sleep(min(_RESUME_PAUSE * failures, _RESUME_PAUSE_MAX))
            seen = progress.events
            try:
                messages_api = self._async_send_client.conversations.messages
                async with messages_api.with_streaming_response.stream(
                    conversation_id, **progress.resume_args(messages)
                ) as response:
                    async for event in progress.atrack(aiter_events(response)):
                        yield event
                if progress.finished:
                    return
                failures += 1
            except (*_DROPS, GarbledStreamError, letta_client.NotFoundError) as drop:
                dropped = drop
                failures = 0 if progress.events > seen else failures + 1
            except Exception as error:
                raise translate_error(error) from error
        if not progress.finished:
            raise _unrecovered(dropped, stored=True if progress.run_id else None)

    def _find_run(self, conversation_id: str, turn: DoubtfulTurn, *, settle: bool) -> str | None:
        """The run of ``turn`` on the server, or ``None`` when the server has none of it.

        Letta stores a turn's messages when its run ends, so a run still going shows
        no message yet: the conversation's active runs are waited for, then the
        newest messages are looked at for the turn's ``otid``. With ``settle`` (a send
        that may still be on its way) the server is asked twice, :data:`_SETTLE` apart.
        """
        if turn.run_id is not None:
            return turn.run_id
        try:
            for attempt in range(2 if settle else 1):
                if attempt:
                    time.sleep(min(_SETTLE, self.busy_timeout))
                found = self._run_of(conversation_id, turn.otids, turn.depth)
                if found is not None:
                    return found
                active = list(
                    self._send_client.runs.list(conversation_id=conversation_id, active=True)
                )
                for run in active:
                    self._wait_run(str(run.id))
                found = self._run_of(conversation_id, turn.otids, turn.depth) if active else None
                if found is not None:
                    return found
            return None
        except LettaConversationBusyError:
            raise
        except Exception as error:
            raise _unrecovered(error, stored=None) from error

    async def _afind_run(
        self, conversation_id: str, turn: DoubtfulTurn, *, settle: bool
    ) -> str | None:
        """Async twin of :meth:`_find_run`."""
        if turn.run_id is not None:
            return turn.run_id
        try:
            for attempt in range(2 if settle else 1):
                if attempt:
                    await asyncio.sleep(min(_SETTLE, self.busy_timeout))
                found = await self._arun_of(conversation_id, turn.otids, turn.depth)
                if found is not None:
                    return found
                runs_api = self._async_send_client.runs
                active = [
                    run async for run in runs_api.list(conversation_id=conversation_id, active=True)
                ]
                for run in active:
                    await self._await_run(str(run.id))
                if active:
                    found = await self._arun_of(conversation_id, turn.otids, turn.depth)
                    if found is not None:
                        return found
            return None
        except LettaConversationBusyError:
            raise
        except Exception as error:
            raise _unrecovered(error, stored=None) from error

    def _ended_unstored(self, run_id: str, turn: DoubtfulTurn) -> bool:
        """Whether run ``run_id`` failed or was cancelled without storing the turn.

        A cancelled run still stores the step it was in (Letta stops between steps), so
        its messages are waited for, within ``busy_timeout``.
        """
        try:
            run = self._send_client.runs.retrieve(run_id)
            if run.status not in _ENDED_BADLY:
                return False
            deadline = time.monotonic() + (self.busy_timeout if run.status == "cancelled" else 0)
            while True:
                if self._run_of(turn.conversation_id, turn.otids, turn.depth) is not None:
                    return False
                if time.monotonic() >= deadline:
                    return True
                time.sleep(_RUN_POLL_MAX)
        except Exception as error:
            raise _unrecovered(error, stored=None) from error

    async def _aended_unstored(self, run_id: str, turn: DoubtfulTurn) -> bool:
        """Async twin of :meth:`_ended_unstored`."""
        try:
            run = await self._async_send_client.runs.retrieve(run_id)
            if run.status not in _ENDED_BADLY:
                return False
            deadline = time.monotonic() + (self.busy_timeout if run.status == "cancelled" else 0)
            while True:
                if await self._arun_of(turn.conversation_id, turn.otids, turn.depth) is not None:
                    return False
                if time.monotonic() >= deadline:
                    return True
                await asyncio.sleep(_RUN_POLL_MAX)
        except Exception as error:
            raise _unrecovered(error, stored=None) from error

    def wait_idle(self, conversation_id: str) -> None:
        """Wait (within ``busy_timeout``) for the conversation's active runs to end."""
        try:
            for run in self._send_client.runs.list(conversation_id=conversation_id, active=True):
                self._wait_run(str(run.id))
        except Exception as error:
            raise translate_error(error) from error

    async def await_idle(self, conversation_id: str) -> None:
        """Async twin of :meth:`wait_idle`."""
        try:
            runs_api = self._async_send_client.runs
            active = [
                run async for run in runs_api.list(conversation_id=conversation_id, active=True)
            ]
            for run in active:
                await self._await_run(str(run.id))
        except Exception as error:
            raise translate_error(error) from error

    def _run_of(
        self, conversation_id: str, otids: list[str], depth: int = _STORED_CHECK_DEPTH
    ) -> str | None:
        newest = self.page(conversation_id, order="desc", limit=depth)
        return _run_with_otid(newest, otids)

    async def _arun_of(
        self, conversation_id: str, otids: list[str], depth: int = _STORED_CHECK_DEPTH
    ) -> str | None:
        newest = await self.apage(conversation_id, order="desc", limit=depth)
        return _run_with_otid(newest, otids)

    def _wait_run(self, run_id: str) -> Any:
        """The run once it has ended, polled within ``busy_timeout``."""
        deadline = time.monotonic() + self.busy_timeout
        pause = _RUN_POLL_FIRST
        while True:
            run = self._send_client.runs.retrieve(run_id)
            remaining = deadline - time.monotonic()
            if run.status not in _RUNNING or remaining <= 0:
                return run
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _RUN_POLL_MAX)

    async def _await_run(self, run_id: str) -> Any:
        """Async twin of :meth:`_wait_run`."""
        deadline = time.monotonic() + self.busy_timeout
        pause = _RUN_POLL_FIRST
        while True:
            run = await self._async_send_client.runs.retrieve(run_id)
            remaining = deadline - time.monotonic()
            if run.status not in _RUNNING or remaining <= 0:
                return run
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, _RUN_POLL_MAX)

    def _recover(self, conversation_id: str, progress: _Progress, run_id: str) -> Iterator[Any]:
        """Yield what run ``run_id`` stored that the stream did not show, once it ended."""
        try:
            run = self._wait_run(run_id)
            if run.status in _RUNNING:
                raise _still_running(run_id, self.busy_timeout)
            response = self._send_client.runs.messages.with_raw_response.list(
                run_id, order="asc", limit=_RUN_MESSAGES
            )
            items = letta_models(response.json())
            usage = self._send_client.runs.usage.retrieve(run_id)
        except (LettaConnectionError, LettaRunError):
            raise
        except Exception as error:
            raise _unrecovered(error, stored=True) from error
        yield from progress.track(progress.unseen(items))
        yield from progress.track(_closing_events(run, usage))
        _raise_if_failed(run, conversation_id)

    async def _arecover(
        self, conversation_id: str, progress: _Progress, run_id: str
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`_recover`."""
        try:
            run = await self._await_run(run_id)
            if run.status in _RUNNING:
                raise _still_running(run_id, self.busy_timeout)
            runs_api = self._async_send_client.runs
            response = await runs_api.messages.with_raw_response.list(
                run_id, order="asc", limit=_RUN_MESSAGES
            )
            items = letta_models(await response.json())
            usage = await runs_api.usage.retrieve(run_id)
        except (LettaConnectionError, LettaRunError):
            raise
        except Exception as error:
            raise _unrecovered(error, stored=True) from error
        for event in progress.track(progress.unseen(items)):
            yield event
        for event in progress.track(_closing_events(run, usage)):
            yield event
        _raise_if_failed(run, conversation_id)

    def _timed_out(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: _Progress,
        timeout: BaseException,
    ) -> LettaTimeoutError:
        """The error for a turn that timed out (kept in doubt by the caller).

        With the run's id seen, the server has the turn; without it, the send may still
        be on its way, so only a stored message proves anything (else ``None``).
        """
        stored: bool | None = True
        if progress.run_id is None:
            try:
                found = self._run_of(conversation_id, [m["otid"] for m in messages])
                stored = True if found else None
            except Exception:
                stored = None
        return _timeout_error(timeout, stored)

    async def _atimed_out(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: _Progress,
        timeout: BaseException,
    ) -> LettaTimeoutError:
        """Async twin of :meth:`_timed_out`."""
        stored: bool | None = True
        if progress.run_id is None:
            try:
                found = await self._arun_of(conversation_id, [m["otid"] for m in messages])
                stored = True if found else None
            except Exception:
                stored = None
        return _timeout_error(timeout, stored)

    # ------------------------------------------------------------------------ sending

    def _send(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        memory: tuple[str, SyncMemory, list[Any] | None],
        options: dict[str, Any],
    ) -> Any:
        """POST the turn, waiting out a busy conversation; the caller closes the response."""
        agent_id, mode, fresh_blocks = memory
        self.sync_memory(mode, agent_id, conversation_id, fresh_blocks)
        deadline = time.monotonic() + self.busy_timeout
        pause = _BUSY_POLL_FIRST
        while True:
            request = self._send_client.conversations.messages.with_streaming_response.create(
                conversation_id,
                messages=messages,  # type: ignore[arg-type]
                **options,
            )
            try:
                return request.__enter__()  # sends it; closing the response is all its exit does
            except letta_client.ConflictError as error:
                _classify_conflict(error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _busy(error, self.busy_timeout) from error
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _BUSY_POLL_MAX)

    async def _asend(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        memory: tuple[str, SyncMemory, list[Any] | None],
        options: dict[str, Any],
    ) -> Any:
        """Async twin of :meth:`_send`."""
        agent_id, mode, fresh_blocks = memory
        await self.async_sync_memory(mode, agent_id, conversation_id, fresh_blocks)
        deadline = time.monotonic() + self.busy_timeout
        pause = _BUSY_POLL_FIRST
        messages_api = self._async_send_client.conversations.messages
        while True:
            request = messages_api.with_streaming_response.create(
                conversation_id,
                messages=messages,  # type: ignore[arg-type]
                **options,
            )
            try:
                return await request.__aenter__()  # sends it; its exit only closes the response
            except letta_client.ConflictError as error:
                _classify_conflict(error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _busy(error, self.busy_timeout) from error
                await asyncio.sleep(min(pause, remaining))
                pause = min(pause * 2, _BUSY_POLL_MAX)

    def read_blocks(self, agent_id: str) -> list[Any]:
        """The agent's memory blocks as they are now (one light agent read)."""
        return list(self.client.agents.retrieve(agent_id, include=BLOCKS).blocks)

    async def aread_blocks(self, agent_id: str) -> list[Any]:
        """Async twin of :meth:`read_blocks`."""
        return list((await self.async_client.agents.retrieve(agent_id, include=BLOCKS)).blocks)

    def sync_memory(
        self,
        mode: SyncMemory,
        agent_id: str,
        conversation_id: str,
        fresh_blocks: list[Any] | None = None,
    ) -> bool:
        """Recompile the conversation's prompt if it lags the agent's memory blocks.

        Only when ``mode`` says a check is due (see :mod:`langchain_letta.memory`).
        Whether it recompiled.
        """
        generation = MEMORY_CHECKS.due(mode, agent_id, conversation_id)
        if generation is None:
            return False
        blocks = fresh_blocks if fresh_blocks is not None else self.read_blocks(agent_id)
        known = MEMORY_CHECKS.known_blocks(conversation_id)
        prompt = None
        if known is None:  # compiled elsewhere: read the blocks from its prompt
            prompt = system_prompt(self.page(conversation_id, order="asc", limit=1))
        recompile = behind(known, blocks, prompt)
        if recompile:
            self.client.conversations.recompile(conversation_id)
        MEMORY_CHECKS.checked(conversation_id, generation, blocks)
        return recompile

    async def async_sync_memory(
        self,
        mode: SyncMemory,
        agent_id: str,
        conversation_id: str,
        fresh_blocks: list[Any] | None = None,
    ) -> bool:
        """Async twin of :meth:`sync_memory`."""
        generation = MEMORY_CHECKS.due(mode, agent_id, conversation_id)
        if generation is None:
            return False
        blocks = fresh_blocks if fresh_blocks is not None else await self.aread_blocks(agent_id)
        known = MEMORY_CHECKS.known_blocks(conversation_id)
        prompt = None
        if known is None:
            prompt = system_prompt(await self.apage(conversation_id, order="asc", limit=1))
        recompile = behind(known, blocks, prompt)
        if recompile:
            await self.async_client.conversations.recompile(conversation_id)
        MEMORY_CHECKS.checked(conversation_id, generation, blocks)
        return recompile

    # ------------------------------------------------------------------------ pages

    def page(
        self,
        conversation_id: str,
        *,
        order: Order,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        """One page of stored messages (Letta items, several per stored message)."""
        return self._listing.page(
            conversation_id, order=order, limit=limit, after=after, before=before
        )

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
        return await self._listing.apage(
            conversation_id, order=order, limit=limit, after=after, before=before
        )


class _TurnState:
    """One turn on its way: its messages, its progress, and how to give it up."""

    def __init__(
        self,
        conversations: Conversations,
        conversation_id: str,
        messages: list[dict[str, Any]],
        agent_id: str,
    ) -> None:
        self.conversations = conversations
        self.conversation_id = conversation_id
        self.messages = messages
        self.agent_id = agent_id
        self.progress = _Progress(agent_id)
        self.responses: list[Any] = []
        self.sent = False
        self.retry_of: DoubtfulTurn | None = None

    def as_doubtful(self) -> DoubtfulTurn:
        return DoubtfulTurn(
            self.conversation_id, self.messages, self.progress.run_id, time.monotonic()
        )

    def keep(self, turn: DoubtfulTurn | None = None) -> None:
        """Remember the turn (or ``turn``) as in doubt, for the next call to attach to.

        A retry that ends before it sent anything keeps the turn it retried.
        """
        if turn is None and (self.sent or self.progress.run_id):
            turn = self.as_doubtful()
        turn = turn or self.retry_of
        if turn is not None:
            DOUBTFUL_TURNS.record(turn)

    def abandon(self) -> None:
        """Close the stream and cancel this turn's own run (no other); keep it in doubt."""
        for response in self.responses:
            abandon_quietly(response.close)
        self.cancel_run()

    def cancel_run(self) -> None:
        """Cancel this turn's own run on the server (no other); keep the turn in doubt."""
        run_id = self.progress.run_id
        if run_id and not self.progress.finished:
            client = self.conversations._send_client
            abandon_quietly(lambda: client.agents.messages.cancel(self.agent_id, run_ids=[run_id]))
        self.keep()

    async def aabandon(self) -> None:
        """Async twin of :meth:`abandon`."""
        with contextlib.suppress(Exception):
            for response in self.responses:
                await response.close()
        run_id = self.progress.run_id
        if run_id and not self.progress.finished:
            client = self.conversations._async_send_client
            with contextlib.suppress(Exception):
                await client.agents.messages.cancel(self.agent_id, run_ids=[run_id])
        self.keep()


def _text(item: Any) -> str:
    value = getattr(item, _TEXT_FIELDS.get(str(getattr(item, "message_type", "")), ""), None)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(getattr(part, "text", None) or "" for part in value)
    return ""


def _run_with_otid(items: list[Any], otids: list[str]) -> str | None:
    """The run that stored a message carrying one of ``otids``, if ``items`` show one."""
    wanted = set(otids)
    for item in items:
        if getattr(item, "otid", None) in wanted:
            run_id = getattr(item, "run_id", None)
            return str(run_id) if run_id else None
    return None


def _closing_events(run: Any, usage: Any) -> list[Any]:
    """The ``stop_reason`` and ``usage_statistics`` events of an ended run."""
    stop = SimpleNamespace(
        message_type="stop_reason", stop_reason=str(run.stop_reason or run.status), run_id=run.id
    )
    statistics = SimpleNamespace(
        message_type="usage_statistics",
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
        cached_input_tokens=None,
        reasoning_tokens=None,
        run_id=run.id,
    )
    return [stop, statistics]


def _raise_if_failed(run: Any, conversation_id: str) -> None:
    if run.status != "failed":
        return
    body = {"error_type": "run_failed", "run_id": run.id, "message": str(run.stop_reason)}
    request = httpx.Request("GET", f"http://letta.invalid/v1/runs/{run.id}")
    raise LettaRunError(
        f"The run {run.id} of {conversation_id} failed ({run.stop_reason}).",
        response=httpx.Response(500, request=request),
        body=body,
    )


def _request(client: Letta) -> httpx.Request:
    return httpx.Request("POST", str(client.base_url))


def _verdict(stored: bool | None) -> str:
    if stored:
        return "The server has the turn (it was not re-sent); calling again attaches to it."
    if stored is False:
        return "The server does not have the turn; nothing was stored."
    return "The server could not be asked whether it has the turn."


def _unrecovered(drop: BaseException, stored: bool | None) -> LettaConnectionError:
    """The error for a turn whose stream broke and could not be recovered."""
    error = translate_error(drop)
    message = getattr(error, "message", None) or str(error)
    cls = (
        LettaIncompleteStreamError
        if isinstance(error, (LettaIncompleteStreamError, GarbledStreamError))
        else LettaConnectionError
    )
    result = cls(message=f"{message} {_verdict(stored)}", request=_request_of(error))
    result.turn_stored = stored
    return result


def _request_of(error: BaseException) -> httpx.Request:
    request = getattr(error, "request", None)
    if isinstance(request, httpx.Request):
        return request
    return httpx.Request("POST", "http://letta.invalid/")


def _timeout_error(timeout: BaseException, stored: bool | None) -> LettaTimeoutError:
    error = LettaTimeoutError(request=_request_of(timeout))
    error.message = f"{error.message} {_verdict(stored)}"
    error.args = (error.message,)
    error.turn_stored = stored
    return error


def _still_running(run_id: str, waited: float) -> LettaConnectionError:
    error = LettaConnectionError(
        message=f"The run {run_id} was still going after {waited:g} s. {_verdict(True)}",
        request=httpx.Request("GET", f"http://letta.invalid/v1/runs/{run_id}"),
    )
    error.turn_stored = True
    return error


def _held(waited: float) -> LettaConversationBusyError:
    request = httpx.Request("POST", "http://letta.invalid/")
    return LettaConversationBusyError(
        f"Another turn of this process held the conversation for {waited:g} s; try again later.",
        response=httpx.Response(409, request=request),
        body=None,
    )


def _busy(error: letta_client.ConflictError, waited: float) -> LettaConversationBusyError:
    body = error.body if isinstance(error.body, dict) else {}
    run = f" (held by run {body['run_id']})" if body.get("run_id") else ""
    message = f"The conversation stayed busy{run} for {waited:g} s; try again later."
    return LettaConversationBusyError(message, response=error.response, body=error.body)
