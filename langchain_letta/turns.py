"""A turn's identity: the `otid` its messages carry, and the turns still in doubt.

Letta names each sent message by a client-chosen `otid` and, in background mode,
treats a request with an `otid` it has seen in the last 3 hours as a retry of that
request. So an `otid` must name the user's *intent*, not the text:

- a new call gets new `otid` values, even with the same text as an earlier turn;
- a retry of a call whose outcome is unknown (it timed out, its stream dropped, its
  process gave up waiting) reuses them: the failed call is recorded here, by
  conversation and content, and the next call with the same content in the same
  conversation takes its record over, finds the turn on the server and attaches to
  it instead of sending it again. `with_retry`, `with_fallbacks` to another
  `ChatLetta` and a manual retry all land here;
- an explicit idempotency key (`configurable.idempotency_key`) derives them, so a
  retry from another process is recognised too.

Pure bookkeeping, no I/O; bounded in size and age.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_letta.lru import LRU

__all__ = ["DoubtfulTurn", "DoubtfulTurns", "content_key", "keyed_otids", "new_otids"]

_NAMESPACE = uuid.UUID("5b8f4c1e-7a3d-4e4b-9a55-2c1c6f0a9e11")
_MAX_AGE = 3 * 3600.0  # as long as Letta remembers an otid


def content_key(payloads: Sequence[dict[str, Any]]) -> str:
    """What identifies a turn's content (its payloads without `otid`)."""
    bare = [{k: v for k, v in payload.items() if k != "otid"} for payload in payloads]
    return json.dumps(bare, sort_keys=True, default=str)


def new_otids(payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`payloads`, each with a fresh random `otid`: a new call."""
    return [{**payload, "otid": str(uuid.uuid4())} for payload in payloads]


def keyed_otids(payloads: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """`payloads` with `otid` values derived from an idempotency `key`."""
    return [
        {**payload, "otid": str(uuid.uuid5(_NAMESPACE, f"{key}\n{position}"))}
        for position, payload in enumerate(payloads)
    ]


@dataclass
class DoubtfulTurn:
    """A sent turn whose outcome the caller was not told: its messages and its run."""

    conversation_id: str
    payloads: list[dict[str, Any]]
    run_id: str | None
    since: float
    depth: int = 10
    """How many of the conversation's newest messages to look through for it."""

    @property
    def otids(self) -> list[str]:
        """The `otid` values the turn was sent with."""
        return [str(payload["otid"]) for payload in self.payloads]


class DoubtfulTurns:
    """Turns in doubt, by conversation and content; the oldest are dropped first.

    Args:
        budget: how many (conversation, content) keys to keep.

    """

    def __init__(self, budget: int) -> None:
        self._turns: LRU[tuple[str, str], list[DoubtfulTurn]] = LRU(budget)

    def record(self, turn: DoubtfulTurn) -> None:
        """Remember `turn` so that the next call with its content takes it over."""
        key = (turn.conversation_id, content_key(turn.payloads))
        with self._turns.lock:
            self._turns[key] = [*self._turns.get(key, []), turn]

    def take(self, conversation_id: str, payloads: Sequence[dict[str, Any]]) -> DoubtfulTurn | None:
        """The oldest recorded turn with this content in the conversation (removed)."""
        if not self._turns:  # the usual case: no turn in doubt, no key to compute
            return None
        key = (conversation_id, content_key(payloads))
        now = time.monotonic()
        with self._turns.lock:
            turns = [turn for turn in self._turns.pop(key, []) if now - turn.since < _MAX_AGE]
            if not turns:
                return None
            taken = turns.pop(0)
            if turns:
                self._turns[key] = turns
            return taken

    def clear(self) -> None:
        """Forget every turn (tests, or a simulated restart)."""
        self._turns.clear()

    def __len__(self) -> int:
        with self._turns.lock:
            return sum(len(turns) for turns in self._turns.values())
