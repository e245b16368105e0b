"""Turns and pages of Letta conversations over letta-client, sync and async.

One idea: talk to a conversation safely. A turn is POSTed once (the SDK's automatic
retries are off for sends), turns of one conversation inside this process run one at a
time, a busy conversation (HTTP 409) is waited for within a bound, and every error
leaves as a langchain-letta exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Literal

import httpx
import letta_client
from letta_client import AsyncLetta, Letta

from langchain_letta.errors import (
    LettaConnectionError,
    LettaConversationBusyError,
    LettaPendingApprovalError,
    translate_error,
)
from langchain_letta.events import aiter_events, iter_events, letta_models
from langchain_letta.memory import LEDGER, SyncMemory, behind, observe_tools, system_prompt

__all__ = ["Conversations", "Order"]

Order = Literal["asc", "desc"]

_BLOCKS: list[Any] = ["agent.blocks"]  # an agent read that carries only its memory blocks
_BUSY_POLL_FIRST = 0.2
_BUSY_POLL_MAX = 2.0


_DROPS = (httpx.TransportError, letta_client.APIConnectionError)
_RESUME_ATTEMPTS = 8
_RESUME_PAUSE_MAX = 2.0
_RESUME_PAUSE = 0.25
_STORED_CHECK_DEPTH = 10
_STORED_CHECKS = 4
_STORED_CHECK_PAUSE = 0.5


class _Progress:
    """How far a turn's stream got, so a resumed stream yields no event twice."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.run_id: str | None = None
        self.seq_id = 0
        self.closing_seen: set[str] = set()
        self.events = 0

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
        observe_tools(self.agent_id, event)
        return True

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


class _Locks:
    """One lock per conversation, for threads and for each event loop."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._thread_locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self._loop_locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def for_thread(self, conversation_id: str) -> threading.Lock:
        with self._guard:
            lock = self._thread_locks.get(conversation_id)
            if lock is None:
                lock = threading.Lock()
                self._thread_locks[conversation_id] = lock
            return lock

    def for_loop(self, conversation_id: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            locks = self._loop_locks.setdefault(loop, {})
            return locks.setdefault(conversation_id, asyncio.Lock())


_LOCKS = _Locks()


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
        async_client: the async letta-client.
        busy_timeout: seconds to wait for a conversation another run holds before
            raising :class:`~langchain_letta.errors.LettaConversationBusyError`.

    """

    def __init__(self, client: Letta, async_client: AsyncLetta, busy_timeout: float) -> None:
        self._send_client = client.with_options(max_retries=0)
        self._async_send_client = async_client.with_options(max_retries=0)
        self.client = client
        self.async_client = async_client
        self.busy_timeout = busy_timeout

    # ------------------------------------------------------------------------ turns

    def stream_turn(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        *,
        agent_id: str,
        memory: SyncMemory = "never",
        **options: Any,
    ) -> Iterator[Any]:
        """Send one turn and yield Letta's stream events as they arrive.

        First the conversation's prompt is brought in step with the agent's memory blocks
        as ``memory`` says (see :mod:`langchain_letta.memory`). With ``background=True`` a
        dropped connection is resumed from the last ``seq_id`` (the run goes on on the
        server), so the caller gets every event once. Without it a drop raises at once:
        the turn is never re-sent.
        """
        progress = _Progress(agent_id)
        with _LOCKS.for_thread(conversation_id):
            try:
                response = self._send(conversation_id, messages, (agent_id, memory), options)
                with contextlib.closing(response):
                    yield from progress.track(iter_events(response))
                return
            except _DROPS as drop:
                if not options.get("background"):
                    stored = self._turn_stored(conversation_id, messages)
                    raise _dropped(drop, stored) from drop
                dropped: BaseException = drop
            except Exception as error:
                raise translate_error(error) from error
            failures = 0
            while failures < _RESUME_ATTEMPTS and not progress.finished:
                time.sleep(min(_RESUME_PAUSE * failures, _RESUME_PAUSE_MAX))
                seen = progress.events
                try:
                    with self._send_client.conversations.messages.with_streaming_response.stream(
                        conversation_id, **progress.resume_args(messages)
                    ) as response:
                        yield from progress.track(iter_events(response))
                    return
                except (*_DROPS, letta_client.NotFoundError) as drop:  # 404: run not saved yet
                    dropped = drop
                    failures = 0 if progress.events > seen else failures + 1
                except Exception as error:
                    raise translate_error(error) from error
            if not progress.finished:
                raise translate_error(dropped) from dropped

    async def astream_turn(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        *,
        agent_id: str,
        memory: SyncMemory = "never",
        **options: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`stream_turn`."""
        progress = _Progress(agent_id)
        async with _LOCKS.for_loop(conversation_id):
            try:
                response = await self._asend(conversation_id, messages, (agent_id, memory), options)
                try:
                    async for event in progress.atrack(aiter_events(response)):
                        yield event
                finally:
                    await response.close()
                return
            except _DROPS as drop:
                if not options.get("background"):
                    stored = await asyncio.to_thread(self._turn_stored, conversation_id, messages)
                    raise _dropped(drop, stored) from drop
                dropped: BaseException = drop
            except Exception as error:
                raise translate_error(error) from error
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
                    return
                except (*_DROPS, letta_client.NotFoundError) as drop:  # 404: run not saved yet
                    dropped = drop
                    failures = 0 if progress.events > seen else failures + 1
                except Exception as error:
                    raise translate_error(error) from error
            if not progress.finished:
                raise translate_error(dropped) from dropped

    def _turn_stored(self, conversation_id: str, messages: list[dict[str, Any]]) -> bool | None:
        """``True`` once the server shows the turn's first message; ``None`` if not seen.

        A foreground run may still be storing the turn when the connection breaks, so the
        newest messages are read a few times before giving up (``None``: not confirmed).
        """
        otid = messages[0].get("otid") if messages else None
        for attempt in range(_STORED_CHECKS):
            time.sleep(_STORED_CHECK_PAUSE * attempt)
            try:
                newest = self.page(conversation_id, order="desc", limit=_STORED_CHECK_DEPTH)
            except Exception:
                continue
            if otid and any(getattr(item, "otid", None) == otid for item in newest):
                return True
        return None

    def _send(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        memory: tuple[str, SyncMemory],
        options: dict[str, Any],
    ) -> Any:
        """POST the turn, waiting out a busy conversation; the caller closes the response."""
        agent_id, mode = memory
        self._sync_memory(mode, agent_id, conversation_id)
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
                if time.monotonic() + pause > deadline:
                    raise _busy(error, self.busy_timeout) from error
                time.sleep(pause)
                pause = min(pause * 2, _BUSY_POLL_MAX)

    async def _asend(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        memory: tuple[str, SyncMemory],
        options: dict[str, Any],
    ) -> Any:
        """Async twin of :meth:`_send`."""
        agent_id, mode = memory
        await self._async_sync_memory(mode, agent_id, conversation_id)
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
                if time.monotonic() + pause > deadline:
                    raise _busy(error, self.busy_timeout) from error
                await asyncio.sleep(pause)
                pause = min(pause * 2, _BUSY_POLL_MAX)

    def _sync_memory(self, mode: SyncMemory, agent_id: str, conversation_id: str) -> None:
        """Recompile the conversation's prompt if it lags the agent's memory blocks.

        Only when ``mode`` says a check is due (see :mod:`langchain_letta.memory`).
        """
        generation = LEDGER.due(mode, agent_id, conversation_id)
        if generation is None:
            return
        blocks = self.client.agents.retrieve(agent_id, include=_BLOCKS).blocks
        known = LEDGER.known_blocks(conversation_id)
        prompt = None
        if known is None:  # compiled elsewhere: read the blocks from its prompt
            prompt = system_prompt(self.page(conversation_id, order="asc", limit=1))
        if behind(known, blocks, prompt):
            self.client.conversations.recompile(conversation_id)
        LEDGER.checked(conversation_id, generation, blocks)

    async def _async_sync_memory(
        self, mode: SyncMemory, agent_id: str, conversation_id: str
    ) -> None:
        """Async twin of :meth:`_sync_memory`."""
        generation = LEDGER.due(mode, agent_id, conversation_id)
        if generation is None:
            return
        blocks = (await self.async_client.agents.retrieve(agent_id, include=_BLOCKS)).blocks
        known = LEDGER.known_blocks(conversation_id)
        prompt = None
        if known is None:
            prompt = system_prompt(await self.apage(conversation_id, order="asc", limit=1))
        if behind(known, blocks, prompt):
            await self.async_client.conversations.recompile(conversation_id)
        LEDGER.checked(conversation_id, generation, blocks)

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
        try:
            response = self.client.conversations.messages.with_raw_response.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
            return letta_models(response.json())
        except Exception as error:
            raise translate_error(error) from error

    async def apage(
        self,
        conversation_id: str,
        *,
        order: Order,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        """Async twin of :meth:`page`."""
        try:
            response = await self.async_client.conversations.messages.with_raw_response.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
            return letta_models(await response.json())
        except Exception as error:
            raise translate_error(error) from error


def _dropped(drop: BaseException, stored: bool | None) -> BaseException:
    """The error for a foreground stream that broke mid-turn: it says what the server holds."""
    error = translate_error(drop)
    verdict = (
        "The server stored the turn (it was not re-sent); read the history for the reply."
        if stored
        else "The server does not show the turn yet; read the history before sending again."
    )
    if isinstance(error, LettaConnectionError):
        error = LettaConnectionError(message=f"{error.message} {verdict}", request=error.request)
        error.turn_stored = stored
    return error


def _busy(error: letta_client.ConflictError, waited: float) -> LettaConversationBusyError:
    body = error.body if isinstance(error.body, dict) else {}
    run = f" (held by run {body['run_id']})" if body.get("run_id") else ""
    message = f"The conversation stayed busy{run} for {waited:g} s; try again later."
    return LettaConversationBusyError(message, response=error.response, body=error.body)
