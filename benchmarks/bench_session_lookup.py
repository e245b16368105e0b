#!/usr/bin/env python3
"""Cold session lookup among many sessions of one agent: requests and time, vs raw.

    python benchmarks/bench_session_lookup.py                  # 100, 1,000, 10,000
    python benchmarks/bench_session_lookup.py --sizes 100,1000

One agent gets ``N`` sessions tagged ``user-0`` ... ``user-{N-1}`` (keys that are
prefixes of each other, the worst case of the old ``LIKE`` lookup), then each probe key
is resolved cold (a new process's state) ``repeats`` times: a key that is a prefix of
many others (``user-1``), the newest key, and keys that are not there (``user-``, ``%``,
``a\\b``, resolved without creating). Requests are counted on the wire; the raw
reference is one letta-client ``conversations.list`` with the same ``summary_search``.
Prints a Markdown table (paste it into ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from letta_client import Letta

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Stat, base_url, log, new_agent
from langchain_letta import state
from langchain_letta.sessions import SessionResolver, key_digest, session_tag

REPEATS = 7
WORKERS = 4


def _fill(url: str, agent_id: str, start: int, stop: int) -> float:
    """Create sessions ``user-{start}`` ... ``user-{stop-1}``; seconds per creation."""
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as http:

        def create(n: int) -> None:
            body = {"summary": session_tag(f"user-{n}")}
            http.post("/v1/conversations/", params={"agent_id": agent_id}, json=body)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(create, range(start, stop)))
    return (time.perf_counter() - began) / max(1, stop - start)


def _cold(url: str, agent_id: str, key: str) -> tuple[float, int, str | None]:
    """One cold lookup: seconds, requests, conversation id."""
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    client = Letta(base_url=url, max_retries=0, http_client=http)
    state.reset()  # a new process
    began = time.perf_counter()
    found = SessionResolver(client, agent_id).resolve(key, create=False)
    return time.perf_counter() - began, len(seen), found


def _raw(client: Letta, agent_id: str, key: str) -> float:
    began = time.perf_counter()
    client.conversations.list(
        agent_id=agent_id, summary_search=f"langchain-letta session {key_digest(key)}"
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    url = base_url()
    client = Letta(base_url=url, max_retries=0)
    agent_id = new_agent(client, "session-lookup")
    rows: list[str] = []
    try:
        have = 0
        for size in sizes:
            per_create = _fill(url, agent_id, have, size)
            log(f"{size} sessions ({per_create * 1000:.0f} ms per creation, {WORKERS} workers)")
            have = size
            for key in ("user-1", f"user-{size - 1}", "user-", "%", "a\\b"):
                ours, raws, requests = [], [], set()
                expected_hit = key.startswith("user-") and key != "user-"
                for _ in range(args.repeats):
                    seconds, count, found = _cold(url, agent_id, key)
                    assert (found is not None) == expected_hit, (key, found)
                    ours.append(seconds)
                    requests.add(count)
                    raws.append(_raw(client, agent_id, key))
                ratio = Stat([o / r for o, r in zip(ours, raws, strict=True)])
                rows.append(
                    f"| {size:,} | `{key}` | {'hit' if expected_hit else 'miss'} | "
                    f"{'/'.join(map(str, sorted(requests)))} | {Stat(ours).fmt(1000, ' ms')} | "
                    f"{Stat(raws).fmt(1000, ' ms')} | {ratio.fmt(digits=2)} |"
                )
                log(rows[-1])
    finally:
        client.agents.delete(agent_id)
    print("| sessions | key | found | requests (cold) | ours | raw list | ratio |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
