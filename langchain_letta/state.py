"""Process-wide state: every cache and registry the package keeps, bounded, one `reset()`.

The server holds the truth (threads, sessions, memory). What this process keeps beside it
saves requests or remembers what the server cannot tell; all of it lives here, so a
reader finds it in one place and a test forgets it with one call. Each store is an
`LRU` (least recently used entries go first) or holds only what is in use now.

| Store | Kept: key -> value (why) | Bound | Most bytes |
|---|---|---|---|
| `SESSIONS` | session key -> conversation (a warm session costs no lookup) | 10,000 | 8 MB |
| `OWNERS` | conversation -> agent (each is checked to be the agent's once) | 10,000 | 2.5 MB |
| `MIGRATED` | agents whose old-format session tags were rewritten (once) | 10,000 | 2.5 MB |
| `KEY_LOCKS` | session key -> lock (one lookup or create per key at a time) | 10,000 | 8 MB |
| `THREADS` | conversation -> what was read (a warm read gets only what is new) | 64 MiB | 64 MiB |
| `MEMORY_CHECKS` | agent -> memory generation, conversation -> blocks compiled | 10,000 | 6 MB |
| `DOUBTFUL_TURNS` | conversation, content -> turns in doubt (a retry finds it) | 10,000, 3 h | * |
| `UNANSWERED` | conversation -> structured tool left waiting (next turn answers) | 10,000 | 3 MB |
| `PENDING` | conversation -> tool calls left waiting (next turn answers them) | 10,000 | * |
| `LOCKS` | conversation -> the turn holding it (one turn at a time here) | running turns | - |
| `TIPS` | conversation -> newest message stored (no divergence check) | 10,000 | 2.7 MB |
| `ROOTS` | conversation -> the one it branches from (known without a request) | 10,000 | 2.7 MB |
| `FORKS_AT_MESSAGE` | server -> whether it forks at a message (probed once) | 100 | 30 kB |
| `PLANNED` | conversation -> LangChain ids its running turn sends | 10,000 | * |
| `SENT` | conversation -> LangChain ids stored there (replays recognised) | 40,000 | 8 MB |
| `WARNED` | warnings logged already (each is logged once) | 1,000 | 0.3 MB |
| `CLIENTS` | connection settings -> letta-clients (connections are reused) | 100 | * |
| `TWINS` | a user's client -> the twin derived from it (one, not one per history) | live ones | * |

Bounds are counts of entries except two. `THREADS` is bounded by the bytes its threads
hold, as estimated when an item is read (`history_reading.held_bytes`: an item's JSON
twice plus 1 KiB, at least what it holds: measured 0.78 of it with a 3.5 KB system
prompt), plus 1 KiB a thread; `SENT` counts an id 1 and a conversation 4 (at most
10,000 ids a conversation). "Most bytes" is measured with tracemalloc per entry (UUID ids,
a 16-character session key: 0.3 KB an entry; a 512-character key, the longest allowed:
0.8 KB), times the bound; * marks a store whose entries hold what a turn sent or answered
(a turn's input, tool calls, a client with its connections), filled only by turns that
failed, stopped for tools, or by distinct connection settings. Together, at most about
110 MB plus those.

What an eviction costs: a request the next time, never a wrong answer. A session, owner,
thread or memory check forgotten is looked up, checked or read again (a read thread is
read whole again); a tip or root forgotten costs a listing or a retrieve. Only
`DOUBTFUL_TURNS`, `UNANSWERED` and `PENDING` hold what the server cannot tell; they fill
only with turns that failed or stopped for tools, far below their bounds. When `SENT`
drops a conversation, `TIPS` and `MEMORY_CHECKS` forget it too (`_unsent`), since both
vouch that this process saw every turn there: a replay of its first step is then found
by a listing. Measured in `benchmarks/bench_many_sessions.py` (`benchmarks/RESULTS.md`,
"Memory over many session keys"): the memory of a process is flat once the stores are
full, by 10,000 keys.

`SESSIONS`, `KEY_LOCKS` and `MIGRATED` are keyed by (server, agent, ...), `OWNERS` and
`THREADS` by (server, conversation). `SENT` keeps at most 10,000 ids per conversation;
past that it forgets them and, as on eviction, `forget_seen_turns`.

`TWINS` holds its keys weakly: an entry goes when the user's client does.

Not stores, but bounded as well: finished streams waiting to be read to their end
(`langchain_letta.draining`: at most 64 for its thread, 64 tasks at once).

The other stores are keyed by conversation or agent ids, which are UUIDs, unique across
servers. `CLIENTS` is keyed by (server, API key digest, timeout, retries); see
`langchain_letta.clients`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from langchain_letta.approvals import PendingCalls
from langchain_letta.locks import ConversationLocks
from langchain_letta.lru import LRU
from langchain_letta.memory import MemoryChecks
from langchain_letta.structured import UnansweredCalls
from langchain_letta.turns import DoubtfulTurns

__all__ = [
    "CLIENTS",
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
    "TWINS",
    "UNANSWERED",
    "WARNED",
    "Clearable",
    "forget_seen_turns",
    "reset",
]


class Clearable(Protocol):
    """A store: it can forget everything."""

    def clear(self) -> None:
        """Forget every entry."""


SESSIONS: LRU[tuple[str, str, str], str] = LRU(10_000)
OWNERS: LRU[tuple[str, str], str] = LRU(10_000)
MIGRATED: LRU[tuple[str, str], bool] = LRU(10_000)
KEY_LOCKS: LRU[tuple[str, str, str], threading.Lock] = LRU(10_000)
THREADS: LRU[tuple[str, str], Any] = LRU(64 * 2**20, weigh=lambda thread: 1_024 + int(thread.size))
MEMORY_CHECKS = MemoryChecks(agents=10_000, conversations=10_000)
DOUBTFUL_TURNS = DoubtfulTurns(10_000)
UNANSWERED = UnansweredCalls(10_000)
PENDING = PendingCalls(10_000)
LOCKS = ConversationLocks()
TIPS: LRU[str, str] = LRU(10_000)
ROOTS: LRU[str, str] = LRU(10_000)
FORKS_AT_MESSAGE: LRU[str, bool] = LRU(100)
PLANNED: LRU[str, tuple[str, ...]] = LRU(10_000)


def forget_seen_turns(conversation_id: str) -> None:
    """Forget having seen every turn of the conversation (its replays need a listing)."""
    TIPS.pop(conversation_id, None)
    MEMORY_CHECKS.not_created_here(conversation_id)


def _unsent(conversation_id: str, _: set[str]) -> None:
    """The ids sent there are forgotten: so is having seen every turn there."""
    forget_seen_turns(conversation_id)


SENT: LRU[str, set[str]] = LRU(40_000, weigh=lambda ids: 4 + len(ids), on_evict=_unsent)
WARNED: LRU[str, bool] = LRU(1_000)
CLIENTS: LRU[tuple[Any, ...], Any] = LRU(100)
TWINS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

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
    "TWINS": TWINS,
}
"""Every store above by name (tests that act as several processes save and restore them)."""


def reset() -> None:
    """Forget everything this process keeps, as a fresh process starts (for tests)."""
    for store in STORES.values():
        store.clear()
