"""One turn at a time per conversation inside a process, every wait bounded.

A turn holds its conversation's lock while its stream is open. Two things make a plain
lock wrong here: a caller may abandon a stream without closing it (break out of a
`for` loop and keep the iterator), and a wait must end within `busy_timeout`. So
each lock knows its holder (a thread, or an asyncio task) and how to abandon it:

- a turn that finds the lock held by *its own* thread or task (the one the public call
  came from), or by a thread or task that has ended, knows the holder's stream is
  suspended for good (nobody is consuming it), so it abandons that stream (closes it
  and cancels its run on the server) and takes the lock;
- a turn that finds it held by another thread or task waits, at most `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConversationLocks", "Holder", "LockTimeoutError", "current_owner"]


class LockTimeoutError(Exception):
    """The conversation's lock stayed held by another turn for the whole wait."""


def current_owner() -> object:
    """The task running now, else the thread: who a turn started here belongs to."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.current_thread()


@dataclass(eq=False)
class Holder:
    """A turn holding a conversation: who it runs in and how to abandon its stream."""

    abandon: Callable[[], None] = lambda: None
    owner: object = field(default_factory=current_owner)
    abandoned: bool = False


class _Slot:
    def __init__(self) -> None:
        self.holder: Holder | None = None
        self.freed = threading.Condition()


class ConversationLocks:
    """The conversations' slots, shared by every model of the process (weakly held)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._slots: weakref.WeakValueDictionary[str, _Slot] = weakref.WeakValueDictionary()

    def _slot(self, conversation_id: str) -> _Slot:
        with self._guard:
            slot = self._slots.get(conversation_id)
            if slot is None:
                slot = _Slot()
                self._slots[conversation_id] = slot
            return slot

    def _try(self, slot: _Slot, holder: Holder) -> Holder | None:
        """Take the slot if it is free; else the holder to abandon or `None` to wait."""
        with slot.freed:
            current = slot.holder
            if current is None:
                slot.holder = holder
                return holder
            if current.owner is holder.owner or _gone(current.owner):
                slot.holder = holder
                current.abandoned = True
                return current
            return None

    def acquire(self, conversation_id: str, holder: Holder, timeout: float) -> _Slot:
        """Hold the conversation for `holder` (a thread), waiting at most `timeout`."""
        slot = self._slot(conversation_id)
        deadline = time.monotonic() + timeout
        while True:
            taken = self._try(slot, holder)
            if taken is not None:
                if taken is not holder:
                    taken.abandon()
                return slot
            with slot.freed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeoutError
                if slot.holder is not None:
                    slot.freed.wait(min(remaining, 0.5))

    async def aacquire(self, conversation_id: str, holder: Holder, timeout: float) -> _Slot:
        """Async twin of `acquire` (`holder` is an asyncio task)."""
        slot = self._slot(conversation_id)
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            taken = self._try(slot, holder)
            if taken is not None:
                if taken is not holder:
                    taken.abandon()
                return slot
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeoutError
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.1)

    def clear(self) -> None:
        """Forget every slot (as another process: turns running now keep theirs)."""
        with self._guard:
            self._slots.clear()

    @staticmethod
    def release(slot: _Slot, holder: Holder) -> None:
        """Free the slot if `holder` still holds it (an abandoned holder does not)."""
        with slot.freed:
            if slot.holder is holder:
                slot.holder = None
                slot.freed.notify()


def _gone(owner: object) -> bool:
    """Whether a holder's thread or task has ended (its stream can never be read again)."""
    if isinstance(owner, threading.Thread):
        return not owner.is_alive()
    if isinstance(owner, asyncio.Task):
        return owner.done()
    return False


def abandon_quietly(action: Callable[[], Any]) -> None:
    """Run a best-effort clean-up: a failure to cancel must not mask the caller's error."""
    with contextlib.suppress(Exception):
        action()
