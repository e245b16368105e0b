"""A finished stream's body read to its end off the turn's path, so its connection is pooled.

Letta sends `data: [DONE]` once a turn's reply is complete, but ends the HTTP body only
once it has finished the run's bookkeeping (50-200 ms later on the local stack). httpx
returns a connection to its pool only when the response was read to its end: a stream
closed at `[DONE]`, as letta-client closes it, costs a new connection per turn, and
reading to the end before returning makes every turn wait for the server. So a turn
returns at `[DONE]` and hands its response over here, to be read to its end and closed:

- sync (`drain_later`): by one daemon thread, one response after another (their bodies
  end on the server in parallel, so a queue does not add up their waits). At most
  `WAITING` responses wait for it; one more is closed at once (its connection dropped).
  A forked child starts a drainer of its own (the parent's responses are the parent's).
- async (`adrain_later`): by a task on the response's event loop, kept referenced until
  it ends; at most `WAITING` at once. A loop that shuts down (`asyncio.run`) cancels it,
  which closes the response; a task whose loop was closed without that is let go at the
  next hand-over, silently.

A drain reads for at most `BUDGET` seconds, then closes the response (its connection is
dropped); a read already waiting ends within the client's read timeout. Nothing a drain
meets is raised, since the turn is complete: it is logged at debug level.

A request sent while a connection is still being drained opens another one, so a pool
keeps one connection more than the requests a turn has in flight at once (under
`RunnableWithMessageHistory`: the history read and the memory-block read alongside it),
however many turns run: not one per turn.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = ["BUDGET", "WAITING", "adrain_later", "drain_later"]

BUDGET = 10.0
"""Seconds a drain may read before it closes the response."""
WAITING = 64
"""Responses that may wait for the sync drainer (and async drains running at once)."""

_LOG = logging.getLogger(__name__)


class _Drainer:
    """One daemon thread reading handed-over responses to their end, in turn."""

    def __init__(self, waiting: int) -> None:
        self._queue: queue.Queue[tuple[Any, Iterator[Any], float]] = queue.Queue(waiting)
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def hand_over(self, response: Any, rest: Iterator[Any]) -> None:
        """Read `rest` (what `response` has left) and close `response`, off this thread."""
        self._start()
        try:
            self._queue.put_nowait((response, rest, time.monotonic() + BUDGET))
        except queue.Full:
            _close(response)

    def _start(self) -> None:
        """Start the thread unless it runs."""
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="langchain-letta-drain", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            response, rest, deadline = self._queue.get()
            try:
                for _ in rest:
                    if time.monotonic() > deadline:
                        _LOG.debug("a finished stream went on for %s s; closed", BUDGET)
                        break
            except Exception as error:
                _LOG.debug("reading a finished stream to its end failed: %s", _named(error))
            finally:
                _close(response)


_DRAINER = _Drainer(WAITING)
_TASKS: set[asyncio.Task[None]] = set()
_TASKS_GUARD = threading.Lock()  # event loops in several threads hand over


def drain_later(response: Any, rest: Iterator[Any]) -> None:
    """Read `rest` (what `response` has left) to its end off this thread, then close it."""
    _DRAINER.hand_over(response, rest)


def _start_afresh() -> None:
    """In a forked child: the responses waiting for the parent's drainer are the parent's."""
    global _DRAINER
    _DRAINER = _Drainer(WAITING)


os.register_at_fork(after_in_child=_start_afresh)


async def adrain_later(response: Any, rest: AsyncIterator[Any]) -> None:
    """Async twin of `drain_later`: a task on the running event loop reads and closes."""
    loop = asyncio.get_running_loop()
    with _TASKS_GUARD:
        for gone in [task for task in _TASKS if task.get_loop().is_closed()]:
            # Its loop was closed while it ran: it never runs again. Let it go without
            # the "Task was destroyed but it is pending" report (as asyncio.gather does).
            gone._log_destroy_pending = False  # type: ignore[attr-defined]
            _TASKS.discard(gone)
        task: asyncio.Task[None] | None = None
        if len(_TASKS) < WAITING:
            task = loop.create_task(_adrain(response, rest))
            _TASKS.add(task)
    if task is None:
        await response.close()
    else:
        task.add_done_callback(_forget)


def _forget(task: asyncio.Task[None]) -> None:
    with _TASKS_GUARD:
        _TASKS.discard(task)


async def _adrain(response: Any, rest: AsyncIterator[Any]) -> None:
    try:
        async with asyncio.timeout(BUDGET):
            async for _ in rest:
                pass
    except TimeoutError:
        _LOG.debug("a finished stream went on for %s s; closed", BUDGET)
    except Exception as error:
        _LOG.debug("reading a finished stream to its end failed: %s", _named(error))
    finally:
        try:
            await response.close()
        except Exception as error:
            _LOG.debug("closing a finished stream failed: %s", _named(error))


def _close(response: Any) -> None:
    try:
        response.close()
    except Exception as error:
        _LOG.debug("closing a finished stream failed: %s", _named(error))


def _named(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
