"""3. Full read of a long history: LettaChatMessageHistory.messages vs raw SDK paging."""

from __future__ import annotations

import time

from letta_client import Letta

from benchmarks.common import (
    Counter,
    Row,
    Section,
    Stat,
    counted_clients,
    log,
    ratio,
    seed,
    tagged_conversation,
    verdict,
)
from langchain_letta import LettaChatMessageHistory, state
from langchain_letta.messages import from_letta_messages

GOAL = 1.10
PAGE = 100


def _raw_read(client: Letta, conversation_id: str) -> int:
    """Every stored item, oldest first: the SDK's own auto-paging (``after`` = last id)."""
    return len(list(client.conversations.messages.list(conversation_id, order="asc", limit=PAGE)))


def _ours_read(history: LettaChatMessageHistory) -> int:
    # a fresh process: nothing cached
    state.reset()
    return len(history.messages)


def run(url: str, agent_id: str, stored: int, repeats: int) -> Section:
    plain = Letta(base_url=url, timeout=300)
    conversation_id = tagged_conversation(plain, agent_id, f"bench-read-{time.monotonic_ns()}")
    seconds = seed(plain, conversation_id, stored)
    counter = Counter()
    client, async_client = counted_clients(url, counter)
    history = LettaChatMessageHistory(
        conversation_id=conversation_id,
        agent_id=agent_id,
        client=client,
        async_client=async_client,
        page_size=PAGE,
    )
    ours_t: list[float] = []
    raw_t: list[float] = []
    ours_n: list[float] = []
    raw_n: list[float] = []
    ours_cpu: list[float] = []
    raw_cpu: list[float] = []
    messages = items = 0
    for i in range(repeats + 1):
        order = ("ours", "raw") if i % 2 == 0 else ("raw", "ours")
        for who in order:
            with counter.measure() as n:
                start, cpu = time.perf_counter(), time.process_time()
                if who == "ours":
                    messages = _ours_read(history)
                else:
                    items = _raw_read(client, conversation_id)
                elapsed = time.perf_counter() - start
                used = time.process_time() - cpu
            if i == 0:
                continue  # warm-up pair
            (ours_t if who == "ours" else raw_t).append(elapsed)
            (ours_n if who == "ours" else raw_n).append(n[0])
            (ours_cpu if who == "ours" else raw_cpu).append(used)
    log(f"history read: seeded {stored} in {seconds:.1f} s; {items} items -> {messages} messages")
    r = ratio(ours_t, raw_t)
    section = Section()
    label = f"{items:,} stored items"
    section.rows.append(
        Row(
            "3 full read",
            f"time, {label}",
            Stat(ours_t).fmt(1000, " ms"),
            Stat(raw_t).fmt(1000, " ms"),
            r.fmt(digits=3),
            f"<= {GOAL}",
            verdict(r.median, GOAL),
        )
    )
    same = Stat(ours_n).median <= Stat(raw_n).median
    section.rows.append(
        Row(
            "3 full read",
            f"requests, {label}",
            Stat(ours_n).fmt(digits=0),
            Stat(raw_n).fmt(digits=0),
            f"{Stat(ours_n).median / Stat(raw_n).median:.2f}",
            "same (or fewer)",
            "met" if same else "MISSED",
            f"page size {PAGE}",
        )
    )
    section.notes.append(
        f"full read: {items} items fold into {messages} LangChain messages "
        f"(system prompt left out); seeding {stored} messages took {seconds:.1f} s"
    )
    section.rows.append(
        Row(
            "3 full read",
            f"client CPU, {label}",
            Stat(ours_cpu).fmt(1000, " ms"),
            Stat(raw_cpu).fmt(1000, " ms"),
            ratio(ours_cpu, raw_cpu).fmt(digits=2),
            "-",
            "info",
            f"folding into LangChain messages alone: {_fold_cpu(client, conversation_id):.1f} ms",
        )
    )
    return section


def _fold_cpu(client: Letta, conversation_id: str) -> float:
    """Median CPU ms of ``from_letta_messages`` over the whole thread (no I/O)."""
    items = list(client.conversations.messages.list(conversation_id, order="asc", limit=PAGE))
    samples = []
    for _ in range(5):
        start = time.process_time()
        from_letta_messages(items, conversation_id=conversation_id, agent_id=None)
        samples.append(time.process_time() - start)
    return 1000 * Stat(samples).median
