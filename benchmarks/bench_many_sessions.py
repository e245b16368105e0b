#!/usr/bin/env python3
"""Memory while 100,000 distinct session keys pass through one process.

    python benchmarks/bench_many_sessions.py                 # 100,000 keys
    python benchmarks/bench_many_sessions.py --keys 20000

Each key is a new user (eight at once): one ``ChatLetta.invoke`` with ``session_id=key``
(lookup, create, memory check, send) and one ``LettaChatMessageHistory(session_id=key)``
read, as a web app serving many users does. The server is ``fake_letta.py`` on loopback,
in its own process, so this process holds only the client side. tracemalloc runs from
before the package is imported; at each tenth of the keys, after ``gc.collect()``, the
traced memory and the RSS are taken. Flat means the last checkpoint is within 10 % of the
first (the first tenth is the warm-up). The allocations that grew most between the two,
by source line, tell which structure holds what. The model and the histories share one
injected letta-client pair (``--own-clients``: each builds its own from ``base_url``).
Prints a Markdown section (paste it into ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import tracemalloc

tracemalloc.start(1)

import argparse  # noqa: E402
import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from letta_client import AsyncLetta, Letta  # noqa: E402

from benchmarks.common import log  # noqa: E402
from langchain_letta import ChatLetta, LettaChatMessageHistory  # noqa: E402

GOAL = 1.10
WORKERS = 8  # users served at once (each new session waits 50 ms in the create race rule)
MIB = 2**20
AGENT_ID = "agent-00000000-0000-4000-8000-00000000a9e7"


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _checkpoint() -> tuple[int, int, tracemalloc.Snapshot]:
    gc.collect()
    return tracemalloc.get_traced_memory()[0], _rss(), tracemalloc.take_snapshot()


def _grown(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top: int) -> list[str]:
    """The source lines whose live allocations grew most, package lines first."""
    ignore = tracemalloc.Filter(False, tracemalloc.__file__)
    first, last = first.filter_traces([ignore]), last.filter_traces([ignore])
    diffs = [d for d in last.compare_to(first, "lineno") if d.size_diff > 0]
    ours = [d for d in diffs if "langchain_letta" in d.traceback[0].filename]
    lines = []
    for diff in (ours[:top] + [d for d in diffs if d not in ours][:top])[: 2 * top]:
        frame = diff.traceback[0]
        where = frame.filename.split("site-packages/")[-1].split("wt-setup2/")[-1]
        lines.append(
            f"{where}:{frame.lineno} +{diff.size_diff / MIB:.2f} MiB ({diff.count_diff:+,} blocks)"
        )
    return lines


def run(keys: int, own_clients: bool) -> str:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_letta.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        client, async_client = Letta(base_url=url, max_retries=0), AsyncLetta(base_url=url)
        shared = {} if own_clients else {"client": client, "async_client": async_client}
        model = ChatLetta(agent_id=AGENT_ID, base_url=url, max_retries=0, **shared)

        def user(n: int) -> None:
            key = f"user-{n}"
            model.invoke("hi", config={"configurable": {"session_id": key}})
            history = LettaChatMessageHistory(
                session_id=key, agent_id=AGENT_ID, base_url=url, **shared
            )
            assert len(history.messages) == 2, key

        step = max(1, keys // 10)
        marks: list[tuple[int, int, int, float]] = []
        snapshots: list[tracemalloc.Snapshot] = []
        began = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            for start in range(0, keys, step):
                list(pool.map(user, range(start, min(keys, start + step))))
                traced, rss, snapshot = _checkpoint()
                done = min(keys, start + step)
                marks.append((done, traced, rss, time.perf_counter() - began))
                snapshots = [snapshots[0], snapshot] if snapshots else [snapshot]
                log(f"{done:,} keys: traced {traced / MIB:.1f} MiB, RSS {rss / MIB:.1f} MiB")
    finally:
        server.terminate()
        server.wait()
    return _report(keys, own_clients, marks, _grown(snapshots[0], snapshots[-1], 6))


def _report(
    keys: int, own_clients: bool, marks: list[tuple[int, int, int, float]], grown: list[str]
) -> str:
    first, last = marks[0], marks[-1]
    traced, rss = last[1] / first[1], last[2] / first[2]
    verdict = "met" if max(traced, rss) <= GOAL else "MISSED"
    clients = (
        "each model and history builds its clients from `base_url`"
        if own_clients
        else "the model and every history share one injected letta-client pair"
    )
    per_key = (last[1] - first[1]) / max(1, last[0] - first[0])
    rows = "\n".join(f"| {n:,} | {t / MIB:.1f} | {r / MIB:.1f} | {s:.0f} |" for n, t, r, s in marks)
    return f"""## Memory over {keys:,} session keys (issue 19)

Command: `python benchmarks/bench_many_sessions.py --keys {keys}\
{" --own-clients" if own_clients else ""}`, \
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, against `benchmarks/fake_letta.py` \
on loopback (its own process). Each key: one `ChatLetta.invoke` with that `session_id` and \
one `LettaChatMessageHistory(session_id=key).messages`, {WORKERS} users at once; \
{clients}. Memory after `gc.collect()`.

| keys | traced MiB | RSS MiB | seconds |
|---|---|---|---|
{rows}

- Last vs first checkpoint: traced {traced:.2f}, RSS {rss:.2f} (goal <= {GOAL:.2f}): \
**{verdict}**; {per_key:,.0f} traced bytes kept per key after the warm-up.
- Grown most (live allocations, last minus first checkpoint, by source line):
{chr(10).join(f"  - `{line}`" for line in grown)}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument(
        "--own-clients",
        action="store_true",
        help="histories build their clients from base_url (the client pool's path)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(run(args.keys, args.own_clients))


if __name__ == "__main__":
    main()
