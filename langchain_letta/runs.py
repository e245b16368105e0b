"""Letta runs of a conversation: wait for them, and find the run of a turn in doubt.

Letta stores a turn's messages when its run ends, so a run still going shows no
message yet: to find a turn, the conversation's active runs are waited for, then its
newest messages are looked through for the turn's `otid`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from langchain_letta.errors import LettaConversationBusyError, translate_error
from langchain_letta.outcomes import timed_out, unrecovered
from langchain_letta.progress import StreamProgress, run_with_otid
from langchain_letta.steps import Backoff
from langchain_letta.turns import DoubtfulTurn

if TYPE_CHECKING:
    from langchain_letta.conversation import Conversations

__all__ = ["RUNNING", "Runs"]

RUNNING = frozenset({"created", "running", None})
_ENDED_BADLY = frozenset({"failed", "cancelled"})
_RUN_POLL_FIRST = 0.1
_RUN_POLL_MAX = 1.0
_STORED_CHECK_DEPTH = 10
_SECOND_LOOK = 1.0  # seconds between two looks for a send that may still be on its way


class Runs:
    """Waits for runs and finds turns on the server, sync and async.

    Args:
        conversations: the conversations whose clients and pages it uses; every wait
            is bounded by their `busy_timeout`.

    """

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    @property
    def _timeout(self) -> float:
        return self._conversations.busy_timeout

    # ------------------------------------------------------------------ waiting

    def wait_run(self, run_id: str) -> Any:
        """The run once it has ended, polled within `busy_timeout` (else as it is)."""
        backoff = Backoff(self._timeout, _RUN_POLL_FIRST, _RUN_POLL_MAX)
        while True:
            run = self._conversations.send_client.runs.retrieve(run_id)
            pause = backoff.next_pause()
            if run.status not in RUNNING or pause is None:
                return run
            time.sleep(pause)

    async def await_run(self, run_id: str) -> Any:
        """Async twin of `wait_run`."""
        backoff = Backoff(self._timeout, _RUN_POLL_FIRST, _RUN_POLL_MAX)
        while True:
            run = await self._conversations.async_send_client.runs.retrieve(run_id)
            pause = backoff.next_pause()
            if run.status not in RUNNING or pause is None:
                return run
            await asyncio.sleep(pause)

    def wait_idle(self, conversation_id: str) -> None:
        """Wait (within `busy_timeout` a run) for the conversation's active runs to end."""
        try:
            for run_id in self._active(conversation_id):
                self.wait_run(run_id)
        except Exception as error:
            raise translate_error(error) from error

    async def await_idle(self, conversation_id: str) -> None:
        """Async twin of `wait_idle`."""
        try:
            for run_id in await self._aactive(conversation_id):
                await self.await_run(run_id)
        except Exception as error:
            raise translate_error(error) from error

    def _active(self, conversation_id: str) -> list[str]:
        runs = self._conversations.send_client.runs
        return [str(run.id) for run in runs.list(conversation_id=conversation_id, active=True)]

    async def _aactive(self, conversation_id: str) -> list[str]:
        runs = self._conversations.async_send_client.runs
        listed = runs.list(conversation_id=conversation_id, active=True)
        return [str(run.id) async for run in listed]

    # ------------------------------------------------------------------ finding a turn

    def run_of(
        self, conversation_id: str, otids: list[str], depth: int = _STORED_CHECK_DEPTH
    ) -> str | None:
        """The run that stored a message with one of `otids` among the newest `depth`."""
        newest = self._conversations.listing.newest(conversation_id, depth)
        return run_with_otid(newest, otids)

    async def arun_of(
        self, conversation_id: str, otids: list[str], depth: int = _STORED_CHECK_DEPTH
    ) -> str | None:
        """Async twin of `run_of`."""
        newest = await self._conversations.listing.anewest(conversation_id, depth)
        return run_with_otid(newest, otids)

    def find_run(self, turn: DoubtfulTurn, *, look_twice: bool) -> str | None:
        """The run of `turn` on the server, or `None` when the server has none of it.

        With `look_twice` (a send that may still be on its way) the server is asked
        twice, `_SECOND_LOOK` seconds apart.
        """
        if turn.run_id is not None:
            return turn.run_id
        try:
            for attempt in range(2 if look_twice else 1):
                if attempt:
                    time.sleep(min(_SECOND_LOOK, self._timeout))
                found = self.run_of(turn.conversation_id, turn.otids, turn.depth)
                active = [] if found else self._active(turn.conversation_id)
                for run_id in active:
                    self.wait_run(run_id)
                if active:
                    found = self.run_of(turn.conversation_id, turn.otids, turn.depth)
                if found is not None:
                    return found
            return None
        except LettaConversationBusyError:
            raise
        except Exception as error:
            raise unrecovered(error, stored=None) from error

    async def afind_run(self, turn: DoubtfulTurn, *, look_twice: bool) -> str | None:
        """Async twin of `find_run`."""
        if turn.run_id is not None:
            return turn.run_id
        try:
            for attempt in range(2 if look_twice else 1):
                if attempt:
                    await asyncio.sleep(min(_SECOND_LOOK, self._timeout))
                found = await self.arun_of(turn.conversation_id, turn.otids, turn.depth)
                active = [] if found else await self._aactive(turn.conversation_id)
                for run_id in active:
                    await self.await_run(run_id)
                if active:
                    found = await self.arun_of(turn.conversation_id, turn.otids, turn.depth)
                if found is not None:
                    return found
            return None
        except LettaConversationBusyError:
            raise
        except Exception as error:
            raise unrecovered(error, stored=None) from error

    def ended_unstored(self, run_id: str, turn: DoubtfulTurn) -> bool:
        """Whether run `run_id` failed or was cancelled without storing the turn.

        A cancelled run still stores the step it was in (Letta stops between steps),
        so its messages are waited for, within `busy_timeout`.
        """
        try:
            run = self._conversations.send_client.runs.retrieve(run_id)
            if run.status not in _ENDED_BADLY:
                return False
            deadline = time.monotonic() + (self._timeout if run.status == "cancelled" else 0)
            while self.run_of(turn.conversation_id, turn.otids, turn.depth) is None:
                if time.monotonic() >= deadline:
                    return True
                time.sleep(_RUN_POLL_MAX)
            return False
        except Exception as error:
            raise unrecovered(error, stored=None) from error

    async def aended_unstored(self, run_id: str, turn: DoubtfulTurn) -> bool:
        """Async twin of `ended_unstored`."""
        try:
            run = await self._conversations.async_send_client.runs.retrieve(run_id)
            if run.status not in _ENDED_BADLY:
                return False
            deadline = time.monotonic() + (self._timeout if run.status == "cancelled" else 0)
            while await self.arun_of(turn.conversation_id, turn.otids, turn.depth) is None:
                if time.monotonic() >= deadline:
                    return True
                await asyncio.sleep(_RUN_POLL_MAX)
            return False
        except Exception as error:
            raise unrecovered(error, stored=None) from error

    def timed_out(
        self, turn: DoubtfulTurn, progress: StreamProgress, timeout: BaseException
    ) -> BaseException:
        """The error for a turn that timed out (kept in doubt by the caller).

        With the run's id seen, the server has the turn; without it, the send may
        still be on its way, so only a stored message proves anything (else `None`).
        """
        stored: bool | None = True
        if progress.run_id is None:
            try:
                stored = True if self.run_of(turn.conversation_id, turn.otids) else None
            except Exception:
                stored = None
        return timed_out(timeout, stored)

    async def atimed_out(
        self, turn: DoubtfulTurn, progress: StreamProgress, timeout: BaseException
    ) -> BaseException:
        """Async twin of `timed_out`."""
        stored: bool | None = True
        if progress.run_id is None:
            try:
                stored = True if await self.arun_of(turn.conversation_id, turn.otids) else None
            except Exception:
                stored = None
        return timed_out(timeout, stored)
