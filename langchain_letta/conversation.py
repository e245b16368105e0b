"""Turns and pages of Letta conversations over letta-client, sync and async.

One idea: talk to a conversation safely. A turn is POSTed once (the SDK's automatic
retries are off for sends), turns of one conversation inside this process run one at a
time, a busy conversation (HTTP 409) is waited for within a bound, and every error
leaves as a langchain-letta exception.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import letta_client
from letta_client import AsyncLetta, Letta

from langchain_letta.errors import (
    LettaConversationBusyError,
    LettaPendingApprovalError,
    translate_error,
)

__all__ = ["Conversations", "Order"]

Order = Literal["asc", "desc"]

_BUSY_POLL_FIRST = 0.2
_BUSY_POLL_MAX = 2.0


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
        self, conversation_id: str, messages: list[dict[str, Any]], **options: Any
    ) -> Iterator[Any]:
        """Send one turn and yield Letta's stream events as they arrive."""
        with _LOCKS.for_thread(conversation_id):
            try:
                stream = self._send(conversation_id, messages, options)
                with stream:
                    yield from stream
            except Exception as error:
                raise translate_error(error) from error

    async def astream_turn(
        self, conversation_id: str, messages: list[dict[str, Any]], **options: Any
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`stream_turn`."""
        async with _LOCKS.for_loop(conversation_id):
            try:
                stream = await self._asend(conversation_id, messages, options)
                async with stream:
                    async for event in stream:
                        yield event
            except Exception as error:
                raise translate_error(error) from error

    def _send(
        self, conversation_id: str, messages: list[dict[str, Any]], options: dict[str, Any]
    ) -> Any:
        deadline = time.monotonic() + self.busy_timeout
        pause = _BUSY_POLL_FIRST
        while True:
            try:
                return self._send_client.conversations.messages.create(
                    conversation_id,
                    messages=messages,  # type: ignore[arg-type]
                    **options,
                )
            except letta_client.ConflictError as error:
                _classify_conflict(error)
                if time.monotonic() + pause > deadline:
                    raise _busy(error, self.busy_timeout) from error
                time.sleep(pause)
                pause = min(pause * 2, _BUSY_POLL_MAX)

    async def _asend(
        self, conversation_id: str, messages: list[dict[str, Any]], options: dict[str, Any]
    ) -> Any:
        deadline = time.monotonic() + self.busy_timeout
        pause = _BUSY_POLL_FIRST
        while True:
            try:
                return await self._async_send_client.conversations.messages.create(
                    conversation_id,
                    messages=messages,  # type: ignore[arg-type]
                    **options,
                )
            except letta_client.ConflictError as error:
                _classify_conflict(error)
                if time.monotonic() + pause > deadline:
                    raise _busy(error, self.busy_timeout) from error
                await asyncio.sleep(pause)
                pause = min(pause * 2, _BUSY_POLL_MAX)

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
            page = self.client.conversations.messages.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
        except Exception as error:
            raise translate_error(error) from error
        return list(page.items if hasattr(page, "items") else page)

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
            page = await self.async_client.conversations.messages.list(
                conversation_id, order=order, limit=limit, after=after, before=before
            )
        except Exception as error:
            raise translate_error(error) from error
        return list(page.items if hasattr(page, "items") else page)


def _busy(error: letta_client.ConflictError, waited: float) -> LettaConversationBusyError:
    body = error.body if isinstance(error.body, dict) else {}
    run = f" (held by run {body['run_id']})" if body.get("run_id") else ""
    message = f"The conversation stayed busy{run} for {waited:g} s; try again later."
    return LettaConversationBusyError(message, response=error.response, body=error.body)
