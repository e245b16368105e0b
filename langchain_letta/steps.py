"""Sans-I/O steppers: what a turn does next, decided once for sync and async code.

A stepper is told what happened and says what to do next: how long to pause, whether
to try again, which request comes next. It does no I/O, so the sync and the async
functions that drive it are plumbing, and the decision is written once.

| stepper | decides |
|---|---|
| `Backoff` | the pauses of a poll, doubling, within a deadline |
| `BusyWait` | after an HTTP 409 on a send: wait and send again, or raise |
| `ResumeAttempts` | after a background stream broke: resume it again, or give up |
| `turn_steps` | one turn: look for it on the server, send it, recover or resume it |
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import letta_client

from langchain_letta.outcomes import busy, raise_if_pending_approval, unrecovered
from langchain_letta.turns import DoubtfulTurn, new_otids

if TYPE_CHECKING:
    from langchain_letta.progress import StreamProgress

__all__ = [
    "Backoff",
    "BusyWait",
    "EndedUnstored",
    "FindRun",
    "MetItsTurn",
    "Recover",
    "Resume",
    "ResumeAttempts",
    "Send",
    "Step",
    "TurnPlan",
    "advance",
    "turn_steps",
]

BUSY_POLL_FIRST = 0.2
BUSY_POLL_MAX = 2.0
RESUME_ATTEMPTS = 8
RESUME_PAUSE = 0.25
RESUME_PAUSE_MAX = 2.0


class Backoff:
    """Pauses that start at `first` and double up to `maximum`, within `timeout` seconds."""

    def __init__(
        self,
        timeout: float,
        first: float,
        maximum: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._deadline = clock() + timeout
        self._pause = first
        self._maximum = maximum

    def next_pause(self) -> float | None:
        """The next pause in seconds, or `None` once the deadline has passed."""
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            return None
        pause = min(self._pause, remaining)
        self._pause = min(self._pause * 2, self._maximum)
        return pause


class BusyWait:
    """What a send does after an HTTP 409: pause and send again, or raise.

    A 409 that names a pending tool approval raises
    `LettaPendingApprovalError` at once (waiting cannot cure it); any other 409 is a
    busy conversation, waited for within `timeout` seconds, then
    `LettaConversationBusyError`.
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._backoff = Backoff(timeout, BUSY_POLL_FIRST, BUSY_POLL_MAX, clock)

    def after_conflict(self, error: letta_client.ConflictError) -> float:
        """Seconds to pause before sending again; raises when waiting cannot help."""
        raise_if_pending_approval(error)
        pause = self._backoff.next_pause()
        if pause is None:
            raise busy(error, self._timeout) from error
        return pause


class ResumeAttempts:
    """When a dropped background stream is resumed from its last `seq_id`, and when not.

    Up to `RESUME_ATTEMPTS` attempts in a row that bring no new event, with growing
    pauses; an attempt that brings events starts the count again.
    """

    def __init__(self, progress: StreamProgress, dropped: BaseException) -> None:
        self._progress = progress
        self._dropped = dropped
        self._failures = 0
        self._seen = progress.events

    def next_pause(self) -> float | None:
        """Seconds to pause before the next attempt, or `None` when there is none."""
        if self._failures >= RESUME_ATTEMPTS or self._progress.finished:
            return None
        self._seen = self._progress.events
        return min(RESUME_PAUSE * self._failures, RESUME_PAUSE_MAX)

    def ended(self) -> None:
        """The resumed stream ended (with or without the run's stop reason)."""
        if not self._progress.finished:
            self._failures += 1

    def broke(self, drop: BaseException) -> None:
        """The resumed stream broke (a 404 too: the run is not saved yet)."""
        self._dropped = drop
        self._failures = 0 if self._progress.events > self._seen else self._failures + 1

    def check(self) -> None:
        """Raise the error of a stream that could not be resumed to its end."""
        if not self._progress.finished:
            stored = True if self._progress.run_id else None
            raise unrecovered(self._dropped, stored=stored)


@dataclass(frozen=True)
class FindRun:
    """Look for the run of `turn` on the server; answer its id or `None`."""

    turn: DoubtfulTurn
    look_twice: bool


@dataclass(frozen=True)
class EndedUnstored:
    """Whether run `run_id` failed or was cancelled without storing `turn`; answer a bool."""

    run_id: str
    turn: DoubtfulTurn


@dataclass(frozen=True)
class Send:
    """Send the turn and relay its stream; answer the failure that cut it, or `None`."""


@dataclass(frozen=True)
class Recover:
    """Wait for run `run_id` and relay what it stored that the stream did not show."""

    run_id: str


@dataclass(frozen=True)
class Resume:
    """Resume the background run's stream until its end (`failure`: what cut it)."""

    failure: BaseException


Step = FindRun | EndedUnstored | Send | Recover | Resume


class MetItsTurn(Exception):  # noqa: N818  (an outcome, not an error)
    """A retry's send met the run of the turn it retries (HTTP 409): attach to it.

    The turn's first send was still on its way when the retry looked for it, and got
    there first.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class TurnPlan:
    """What the steps of one turn read and change: its messages and its progress."""

    def __init__(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: StreamProgress,
        retry_of: DoubtfulTurn | None = None,
        background: bool = False,
    ) -> None:
        self.conversation_id = conversation_id
        self.messages = messages
        self.progress = progress
        self.retry_of = retry_of
        self.background = background
        self.sent = False
        self.runs_looked_at: set[str] = set()
        """Runs a 409 named that this retry looked at for its turn (`run_maybe_retried`)."""
        self.failure: BaseException | None = None
        """What cut the stream of the last `Send` (`None`: it ended well or was given up)."""

    def run_maybe_retried(self, error: letta_client.ConflictError) -> str | None:
        """The run holding the conversation (a 409) when it may be the turn this retries.

        Only a retry still sending the retried turn's `otid` values can meet that turn,
        and each run is looked at once (a busy wait stays within its timeout but for one
        wait on that run).
        """
        retry_of = self.retry_of
        if retry_of is None or [m.get("otid") for m in self.messages] != retry_of.otids:
            return None
        body = error.body if isinstance(error.body, dict) else {}
        run_id = str(body["run_id"]) if body.get("run_id") else None
        if run_id is None or run_id in self.runs_looked_at:
            return None
        self.runs_looked_at.add(run_id)
        return run_id

    def as_doubtful(self) -> DoubtfulTurn:
        """The turn as a turn in doubt, for a later call to look for."""
        return DoubtfulTurn(
            self.conversation_id, self.messages, self.progress.run_id, time.monotonic()
        )


def turn_steps(plan: TurnPlan) -> Generator[Step, Any, None]:
    """The steps of one turn; each yielded step is answered with its outcome.

    A retry is first looked for on the server and its run attached to; a run that
    ended without storing it means a new send with new `otid` values. A retry's send
    that meets the retried turn's own run (`MetItsTurn`) attaches to it. A stream cut
    before its stop reason resumes (background runs) or is recovered from its run
    (foreground runs); with no run to be found, the turn's error says whether the
    server has it.
    """
    retry_of = plan.retry_of
    if retry_of is not None:
        run_id = yield FindRun(retry_of, look_twice=True)
        if run_id is not None:
            if not (yield EndedUnstored(run_id, retry_of)):
                plan.progress.run_id = run_id
                yield Recover(run_id)
                return
            plan.messages = new_otids(plan.messages)  # its otid names that run
    failure = yield Send()
    if failure is None:
        return
    if isinstance(failure, MetItsTurn):
        plan.progress.run_id = failure.run_id
        yield Recover(failure.run_id)
        return
    if plan.background:
        yield Resume(failure)
        return
    run_id = plan.progress.run_id
    if run_id is None:
        run_id = yield FindRun(plan.as_doubtful(), look_twice=not plan.sent)
    if run_id is None:
        raise unrecovered(failure, stored=False if plan.sent else None)
    yield Recover(run_id)


def advance(steps: Generator[Step, Any, None], outcome: Any) -> Step | None:
    """The next step, given the outcome of the last one; `None` when the turn is done."""
    try:
        return steps.send(outcome)
    except StopIteration:
        return None
