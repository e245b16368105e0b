#!/usr/bin/env python3
"""Memory while 100,000 distinct session keys pass through one process.

    python benchmarks/bench_many_sessions.py                     # 100,000 keys, heap figures
    python benchmarks/bench_many_sessions.py --keys 20000 --tracemalloc

Each key is a new user (eight at once): one ``ChatLetta.invoke`` with ``session_id=key``
(lookup, create, memory check, send) and one ``LettaChatMessageHistory(session_id=key)``
read, as a web app serving many users does; each reply and read is checked. At each
tenth of the keys, after ``gc.collect()``, the RSS and the Python heap are taken, and the
first key is served again (its entries are long evicted: its next turn and read must
still be exact). The server is ``fake_letta.py`` on loopback, in its own process, so this
process holds only the client side. Flat means every checkpoint from 20,000 keys on (the
stores fill to their bounds within the first 10,000 keys) is within 10 % of the lowest
of them.

The heap is what the allocators hand out now: pymalloc's allocated blocks plus glibc
malloc's in-use bytes (``mallinfo2``), the same memory tracemalloc traces, at no cost per
allocation. ``--tracemalloc`` traces from before the package is imported instead (about
three times the CPU a key) and names the source lines that grew most. The model and the
histories share one injected letta-client pair (``--own-clients``: each builds its own
from ``base_url``). Prints a Markdown section (paste it into ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import sys
import tracemalloc

if "--tracemalloc" in sys.argv:
    tracemalloc.start(1)

import argparse
import ctypes
import gc
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from letta_client import AsyncLetta, Letta

from benchmarks.common import log
from langchain_letta import ChatLetta, LettaChatMessageHistory, state
from langchain_letta.errors import LettaConnectionError
from langchain_letta.lru import LRU

GOAL = 1.10
PLATEAU = 20_000  # keys: every store is at its bound by 10,000 keys (the warm-up)
WORKERS = 8  # users served at once (each new session waits 50 ms in the create race rule)
MIB = 2**20
AGENT_ID = "agent-00000000-0000-4000-8000-00000000a9e7"
T = TypeVar("T")


_MALLINFO2 = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2.split()]


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _pymalloc_bytes() -> int:
    """pymalloc's allocated blocks (``sys._debugmallocstats`` writes them to fd 2)."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        line = next(li for li in out if li.startswith("# bytes in allocated blocks"))
    return int(line.split("=")[1].replace(",", ""))


def _heap() -> int:
    """The bytes the allocators hand out now: pymalloc's and malloc's (small and mmapped)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return _pymalloc_bytes() + int(info.uordblks) + int(info.hblkhd)


@dataclass
class Mark:
    """One checkpoint: keys done, heap (or traced) bytes, RSS bytes, seconds so far."""

    keys: int
    heap: int
    rss: int
    seconds: float


def _checkpoint(keys: int, began: float) -> Mark:
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else _heap()
    return Mark(keys, heap, _rss(), time.perf_counter() - began)


def _grown(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top: int) -> list[str]:
    """The source lines whose live allocations grew most, package lines first."""
    ignore = tracemalloc.Filter(False, tracemalloc.__file__)
    first, last = first.filter_traces([ignore]), last.filter_traces([ignore])
    diffs = [d for d in last.compare_to(first, "lineno") if d.size_diff > 0]
    ours = [d for d in diffs if "langchain_letta" in d.traceback[0].filename]
    lines = []
    for diff in (ours[:top] + [d for d in diffs if d not in ours][:top])[: 2 * top]:
        frame = diff.traceback[0]
        where = frame.filename.split("site-packages/")[-1].split("langchain_letta/")[-1]
        lines.append(
            f"{where}:{frame.lineno} +{diff.size_diff / MIB:.2f} MiB ({diff.count_diff:+,} blocks)"
        )
    return lines


def _stores() -> list[str]:
    """Each store's entries and weight against its bound, now."""
    rows = []
    for name, store in state.STORES.items():
        if isinstance(store, LRU):
            rows.append(f"{name} {len(store):,} ({store.weight:,} / {store.budget:,})")
    return rows


def run(keys: int, every: int, own_clients: bool) -> str:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_letta.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        client, async_client = Letta(base_url=url, max_retries=0), AsyncLetta(base_url=url)
        errors: list[LettaConnectionError] = []
        shared: dict[str, Any] = (
            {} if own_clients else {"client": client, "async_client": async_client}
        )
        model = ChatLetta(agent_id=AGENT_ID, base_url=url, max_retries=0, **shared)

        def again(call: Callable[[], T]) -> T:
            """`call()`, called once more after a connection error (counted)."""
            try:
                return call()
            except LettaConnectionError as error:
                log(f"connection error, called again: {error}")
                errors.append(error)
                return call()

        def user(n: int, turns: int = 1) -> None:
            key = f"user-{n}"
            config: Any = {"configurable": {"session_id": key}}
            reply = again(lambda: model.invoke(f"hi {n}", config=config))
            assert reply.content == f"Echo: hi {n}", (key, reply.content)
            history = LettaChatMessageHistory(
                session_id=key, agent_id=AGENT_ID, base_url=url, **shared
            )
            read = again(lambda: [message.content for message in history.messages])
            assert read == [f"hi {n}", f"Echo: hi {n}"] * turns, (key, read)

        step = max(1, every or keys // 10)
        marks: list[Mark] = []
        snapshots: list[tracemalloc.Snapshot] = []
        began = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            for start in range(0, keys, step):
                list(pool.map(user, range(max(1, start), min(keys, start + step))))
                user(0, turns=len(marks) + 1)  # the first user again, long evicted
                marks.append(_checkpoint(min(keys, start + step), began))
                if tracemalloc.is_tracing():
                    snapshot = tracemalloc.take_snapshot()
                    snapshots = [snapshots[0], snapshot] if snapshots else [snapshot]
                mark = marks[-1]
                log(f"{mark.keys:,} keys: heap {mark.heap / MIB:.1f} MiB, RSS {mark.rss / MIB:.1f}")
    finally:
        server.terminate()
        server.wait()
    grown = _grown(snapshots[0], snapshots[-1], 6) if snapshots else []
    return _report(keys, own_clients, marks, grown, len(errors))


def _report(keys: int, own_clients: bool, marks: list[Mark], grown: list[str], errors: int) -> str:
    plateau = [m for m in marks if m.keys >= PLATEAU] or marks[1:] or marks
    heap = max(m.heap for m in plateau) / min(m.heap for m in plateau)
    rss = max(m.rss for m in plateau) / min(m.rss for m in plateau)
    verdict = "met" if max(heap, rss) <= GOAL else "MISSED"
    clients = (
        "each model and history builds its clients from `base_url`"
        if own_clients
        else "the model and every history share one injected letta-client pair"
    )
    measure = "traced" if grown else "heap"
    first, last = plateau[0], plateau[-1]
    per_key = (last.heap - first.heap) / max(1, last.keys - first.keys)
    rows = "\n".join(
        f"| {m.keys:,} | {m.heap / MIB:.1f} | {m.rss / MIB:.1f} | {m.seconds:.0f} |" for m in marks
    )
    flags = (" --tracemalloc" if grown else "") + (" --own-clients" if own_clients else "")
    if marks[0].keys != max(1, keys // 10):
        flags += f" --every {marks[0].keys}"
    lines = "\n".join(f"  - `{line}`" for line in grown)
    return f"""## Memory over {keys:,} session keys (issue 19)

Command: `python benchmarks/bench_many_sessions.py --keys {keys}{flags}`, \
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, against `benchmarks/fake_letta.py` \
on loopback (its own process). Each key: one `ChatLetta.invoke` with that `session_id` and \
one `LettaChatMessageHistory(session_id=key).messages`, {WORKERS} users at once; \
{clients}. Memory after `gc.collect()`; {measure} = \
{"tracemalloc's traced memory" if grown else "pymalloc's allocated blocks + malloc in use"}.

| keys | {measure} MiB | RSS MiB | seconds |
|---|---|---|---|
{rows}

- From {first.keys:,} keys on (max / min): {measure} {heap:.3f}, RSS {rss:.3f} \
(goal <= {GOAL:.2f}): **{verdict}**; {per_key:,.0f} {measure} bytes a key from \
{first.keys:,} to {last.keys:,}.
- Stores at the end (entries (weight / bound)): {", ".join(_stores())}.
- Connection errors (the call made again, then exact): {errors}.
{"- Grown most (live allocations, last minus first checkpoint, by source line):" if grown else ""}
{lines}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=0, help="keys a checkpoint (a tenth)")
    parser.add_argument(
        "--own-clients",
        action="store_true",
        help="histories build their clients from base_url (the client pool's path)",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace allocations (about 3x slower)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(run(args.keys, args.every, args.own_clients))


if __name__ == "__main__":
    main()
