"""8. LettaStore: requests and latency per op vs raw passages calls and vs InMemoryStore.

Raw is the least a hand-written client must send for the same result: ``get`` one
``passages.list(search=<marker>)``, a new ``put`` one ``passages.create``, a replacing
``put`` list + create + delete (Letta cannot edit a passage), ``search`` one
``passages.search(tags=[prefix tag], top_k=1000)`` (query: Letta cuts at ``top_k``
before the tag filter) or ``passages.list`` (none), ``delete`` list + delete.
``InMemoryStore`` is LangGraph's in-process store: no requests, the floor.

    python benchmarks/bench_store.py [--repeats N] [--items N]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langgraph.store.memory import InMemoryStore
from letta_client import Letta

from benchmarks.common import (
    Counter,
    Row,
    Section,
    Stat,
    base_url,
    counted_clients,
    log,
    new_agent,
    ratio,
)
from langchain_letta import LettaStore
from langchain_letta.store.encoding import encode, key_marker, prefix_marker

NAMESPACE = ("bench", "facts")
GOAL_REQUESTS = {"get": 1, "put (new key)": 2, "put (replace)": 3, "search (query)": 1}


def _seed(client: Letta, agent_id: str, items: int) -> None:
    """``items`` store items over 10 namespaces, plus as many passages the agent wrote."""
    for i in range(items):
        namespace = ("seed", f"user{i % 10}")
        text, tags = encode(namespace, f"k{i}", {"fact": f"seed fact number {i} about tea"})
        client.agents.passages.create(agent_id, text=text, tags=tags)
        client.agents.passages.create(agent_id, text=f"The agent noted fact {i}")


def _raw_ops(client: Letta, agent_id: str) -> dict[str, Callable[[str], Any]]:
    def get(key: str) -> Any:
        return client.agents.passages.list(
            agent_id, search=key_marker(NAMESPACE, key), limit=20, ascending=True
        )

    def put_new(key: str) -> Any:
        text, tags = encode(NAMESPACE, key, {"fact": f"Ada drinks green tea {key}"})
        return client.agents.passages.create(agent_id, text=text, tags=tags)

    def put_replace(key: str) -> Any:
        old = get(key)
        text, tags = encode(NAMESPACE, key, {"fact": f"Ada drinks black tea {key}"})
        client.agents.passages.create(agent_id, text=text, tags=tags)
        for passage in old:
            client.agents.passages.delete(passage.id, agent_id=agent_id)

    def delete(key: str) -> Any:
        for passage in get(key):
            client.agents.passages.delete(passage.id, agent_id=agent_id)

    return {
        "put (new key)": put_new,
        "get": get,
        "put (replace)": put_replace,
        "search (query)": lambda key: client.agents.passages.search(
            agent_id, query=f"what does Ada drink {key}", tags=["ns:bench"], top_k=1000
        ),
        "search (no query)": lambda key: client.agents.passages.list(
            agent_id, search=prefix_marker(("bench",)), limit=100, ascending=True
        ),
        "delete": delete,
    }


def _store_ops(store: Any) -> dict[str, Callable[[str], Any]]:
    return {
        "put (new key)": lambda key: store.put(NAMESPACE, key, {"fact": f"Ada drinks tea {key}"}),
        "get": lambda key: store.get(NAMESPACE, key),
        "put (replace)": lambda key: store.put(NAMESPACE, key, {"fact": f"black tea {key}"}),
        "search (query)": lambda key: store.search(("bench",), query=f"what does Ada drink {key}"),
        "search (no query)": lambda key: store.search(("bench",), limit=100),
        "delete": lambda key: store.delete(NAMESPACE, key),
    }


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(url: str, repeats: int, items: int = 100) -> Section:
    admin = Letta(base_url=url, timeout=300)
    agent_id = new_agent(admin, "store")
    try:
        log(f"store: seeding {items} items and {items} agent passages")
        _seed(admin, agent_id, items)
        ours_counter, raw_counter = Counter(), Counter()
        ours_client, ours_async = counted_clients(url, ours_counter)
        raw_client, _ = counted_clients(url, raw_counter)
        store = LettaStore(agent_id, client=ours_client, async_client=ours_async)
        ours, raw = _store_ops(store), _raw_ops(raw_client, agent_id)
        memory = _store_ops(InMemoryStore())
        times: dict[str, dict[str, list[float]]] = {op: {} for op in ours}
        requests: dict[str, dict[str, list[float]]] = {op: {} for op in ours}
        for i in range(repeats):
            keys = {"ours": f"o{i}-{uuid.uuid4().hex[:6]}", "raw": f"r{i}-{uuid.uuid4().hex[:6]}"}
            order = ["ours", "raw"] if i % 2 == 0 else ["raw", "ours"]
            for op in ours:
                for who in order:
                    fn, counter = (
                        (ours[op], ours_counter) if who == "ours" else (raw[op], raw_counter)
                    )
                    with counter.measure() as n:
                        seconds = _timed(lambda fn=fn, key=keys[who]: fn(key))
                    times[op].setdefault(who, []).append(seconds)
                    requests[op].setdefault(who, []).append(n[0])
                in_memory = _timed(lambda op=op, key=keys["ours"]: memory[op](key))
                times[op].setdefault("memory", []).append(in_memory)
        section = Section()
        for op in ours:
            ours_n = Stat(requests[op]["ours"]).median
            raw_n = Stat(requests[op]["raw"]).median
            goal = GOAL_REQUESTS.get(op)
            section.rows.append(
                Row(
                    "8",
                    f"LettaStore {op}: requests",
                    f"{ours_n:.0f}",
                    f"{raw_n:.0f}",
                    f"{ours_n / raw_n:.2f}" if raw_n else "-",
                    f"<= {goal}" if goal else "-",
                    ("met" if ours_n <= goal else "MISSED") if goal else "-",
                )
            )
            section.rows.append(
                Row(
                    "8",
                    f"LettaStore {op}: ms",
                    Stat(times[op]["ours"]).fmt(1000, " ms"),
                    Stat(times[op]["raw"]).fmt(1000, " ms"),
                    ratio(times[op]["ours"], times[op]["raw"]).fmt(digits=2),
                    "-",
                    "-",
                    f"InMemoryStore {Stat(times[op]['memory']).fmt(1e6, ' us')}",
                )
            )
        section.notes.append(
            f"LettaStore on an agent holding {items} store items and {items} passages of its "
            "own; ms are wall times of one op, ratios ours / raw pair by pair. Raw writes "
            "the same passage text; a raw new-key put skips the lookup that makes put "
            "replace, which is the one request ours adds. A query search reads the 1,000 "
            "passages nearest the query (all of them here); raw top_k=50 without the tag "
            "is faster but misses items of a sparse prefix."
        )
        return section
    finally:
        admin.agents.delete(agent_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    section = run(base_url(), args.repeats, args.items)
    print("| metric | ours | raw | ratio | goal | verdict | note |")
    print("|---|---|---|---|---|---|---|")
    for row in section.rows:
        print(
            f"| {row.metric} | {row.ours} | {row.raw} | {row.ratio} | {row.goal} | "
            f"{row.verdict} | {row.note} |"
        )
    for note in section.notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
