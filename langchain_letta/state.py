"""Process-wide state: every cache and registry the package keeps, bounded, one `reset()`.

The server holds the truth (threads, sessions, memory). What this process keeps beside it
saves requests or remembers what the server cannot tell; all of it lives here, so a
reader finds it in one place and a test forgets it with one call. Each store is an
`LRU` (least recently used entries go first) or holds only what is in use now.

| Store | Kept: key -> value (why) | Bound |
|---|---|---|
| `SESSIONS` | session key -> conversation (a warm session costs no lookup) | 100,000 |
| `OWNERS` | conversation -> agent (each is checked to be the agent's once) | 100,000 |
| `MIGRATED` | agents whose old-format session tags were rewritten (once) | 10,000 |
| `KEY_LOCKS` | session key -> lock (one lookup or create per key at a time) | 10,000 |
| `THREADS` | conversation -> what was read (a warm read gets only what is new) | 200,000 items |
| `MEMORY_CHECKS` | agent -> memory generation, conversation -> blocks compiled | 10,000 / 100,000 |
| `DOUBTFUL_TURNS` | (conversation, content) -> turns in doubt (a retry finds them) | 10,000, 3 h |
| `UNANSWERED` | conversation -> structured tool left waiting (next turn answers) | 10,000 |
| `PENDING` | conversation -> tool calls left waiting (the next turn answers them first) | 10,000 |
| `LOCKS` | conversation -> the turn holding it (one turn at a time here) | running turns |
| `TIPS` | conversation -> newest message stored (no divergence check) | 10,000 |
| `ROOTS` | conversation -> the one it branches from (known without a request) | 10,000 |
| `FORKS_AT_MESSAGE` | server -> whether it forks at a message (probed once) | 100 |
| `PLANNED` | conversation -> LangChain ids its running turn sends | 10,000 |
| `SENT` | conversation -> LangChain ids stored there (replays recognised) | 100,000 ids |
| `WARNED` | warnings logged already (each is logged once) | 1,000 |
| `CLIENTS` | connection settings -> letta-clients (connections are reused) | 100 |

`SESSIONS`, `KEY_LOCKS` and `MIGRATED` are keyed by (server, agent, ...), `OWNERS` and
`THREADS` by (server, conversation). `SENT` keeps at most 10,000 ids per conversation.

The other stores are keyed by conversation or agent ids, which are UUIDs, unique across
servers. `CLIENTS` is keyed by (server, API key digest, timeout, retries); see
`langchain_letta.clients`.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from langchain_letta.approvals import PendingCalls
from langchain_letta.locks import ConversationLocks
from langchain_letta.lru import LRU
from langchain_letta.memory import MemoryChecks
from langchain_letta.structured import UnansweredCalls
from langchain_letta.turns import DoubtfulTurns

__all__ = [
    "DOUBTFUL_TURNS",
    "FORKS_AT_MESSAGE",
    "KEY_LOCKS",
    "LOCKS",
    "MEMORY_CHECKS",
    "MIGRATED",
    "OWNERS",
    "PENDING",
    "PLANNED",
    "ROOTS",
    "SENT",
    "SESSIONS",
    "STORES",
    "THREADS",
    "TIPS",
    "UNANSWERED",
    "WARNED",
    "Clearable",
    "reset",
]


class Clearable(Protocol):
    """A store: it can forget everything."""

    def clear(self) -> None:
        """Forget every entry."""


SESSIONS: LRU[tuple[str, str, str], str] = LRU(100_000)
OWNERS: LRU[tuple[str, str], str] = LRU(100_000)
MIGRATED: LRU[tuple[str, str], bool] = LRU(10_000)
KEY_LOCKS: LRU[tuple[str, str, str], threading.Lock] = LRU(10_000)
THREADS: LRU[tuple[str, str], Any] = LRU(200_000, weigh=lambda thread: int(thread.size))
MEMORY_CHECKS = MemoryChecks(agents=10_000, conversations=100_000)
DOUBTFUL_TURNS = DoubtfulTurns(10_000)
UNANSWERED = UnansweredCalls(10_000)
PENDING = PendingCalls(10_000)
LOCKS = ConversationLocks()
TIPS: LRU[str, str] = LRU(10_000)
ROOTS: LRU[str, str] = LRU(10_000)
FORKS_AT_MESSAGE: LRU[str, bool] = LRU(100)
PLANNED: LRU[str, tuple[str, ...]] = LRU(10_000)
SENT: LRU[str, set[str]] = LRU(100_000, weigh=len)
WARNED: LRU[str, bool] = LRU(1_000)
CLIENTS: LRU[tuple[Any, ...], Any] = LRU(100)

STORES: dict[str, Clearable] = {
    "SESSIONS": SESSIONS,
    "OWNERS": OWNERS,
    "MIGRATED": MIGRATED,
    "KEY_LOCKS": KEY_LOCKS,
    "THREADS": THREADS,
    "MEMORY_CHECKS": MEMORY_CHECKS,
    "DOUBTFUL_TURNS": DOUBTFUL_TURNS,
    "UNANSWERED": UNANSWERED,
    "PENDING": PENDING,
    "LOCKS": LOCKS,
    "TIPS": TIPS,
    "ROOTS": ROOTS,
    "FORKS_AT_MESSAGE": FORKS_AT_MESSAGE,
    "PLANNED": PLANNED,
    "SENT": SENT,
    "WARNED": WARNED,
    "CLIENTS": CLIENTS,
}
"""Every store above by name (tests that act as several processes save and restore them)."""


def reset() -> None:
    """Forget everything this process keeps, as a fresh process starts (for tests)."""
    for store in STORES.values():
        store.clear()
