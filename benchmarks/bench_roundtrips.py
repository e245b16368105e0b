"""2. Round trips per turn of a RunnableWithMessageHistory session vs a naive re-read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import AsyncLetta, Letta

from benchmarks.bench_latency import PROCESS
from benchmarks.common import (
    Counter,
    Row,
    Section,
    Stat,
    counted_clients,
    log,
    seed,
    tagged_conversation,
    verdict,
)
from langchain_letta import ChatLetta, LettaChatMessageHistory

GOAL = 3  # read what is new, check the memory blocks (exact by default), send
PAGE = 100
ARMS = {"ours": "default ('always')", "always": PROCESS}


def _naive_turn(client: Letta, conversation_id: str) -> None:
    """What an app without langchain-letta does: read the whole thread, then send."""
    for _ in client.conversations.messages.list(conversation_id, order="asc", limit=PAGE):
        pass  # the SDK pages on by itself (after = last id), one request per page
    for _ in client.conversations.messages.create(
        conversation_id, messages=[{"role": "user", "content": "next turn"}]
    ):
        pass


def _chain(
    agent_id: str, client: Letta, async_client: AsyncLetta, **options: Any
) -> RunnableWithMessageHistory:
    model = ChatLetta(agent_id=agent_id, client=client, async_client=async_client, **options)
    return RunnableWithMessageHistory(
        model,
        lambda sid: LettaChatMessageHistory(
            session_id=sid, agent_id=agent_id, client=client, async_client=async_client
        ),
    )


def _one_size(url: str, agent_id: str, stored: int, turns: int, llm: str = "") -> Section:
    plain = Letta(base_url=url, timeout=300)
    session = f"bench-rt-{stored}-{time.monotonic_ns()}"
    ours_conv = tagged_conversation(plain, agent_id, session)
    process_conv = tagged_conversation(plain, agent_id, session + "-process")
    naive_conv = tagged_conversation(plain, agent_id, session + "-naive")
    seconds = sum(seed(plain, conv, stored) for conv in (ours_conv, process_conv, naive_conv))

    counter = Counter()
    client, async_client = counted_clients(url, counter)
    config: Any = {"configurable": {"session_id": session}}
    # each arm on its own session (same size): a conversation is used in one mode
    process_config: Any = {"configurable": {"session_id": session + "-process"}}
    chains = {
        "ours": _chain(agent_id, client, async_client),
        "always": _chain(agent_id, client, async_client, sync_memory="process"),
    }
    with counter.measure() as cold:
        chains["ours"].invoke("first turn in this process", config=config)
    chains["always"].invoke(
        "warm the second model (reads the agent's model name)", config=process_config
    )
    steps: dict[str, Callable[[], object]] = {
        "ours": lambda: chains["ours"].invoke("next turn", config=config),
        "always": lambda: chains["always"].invoke("next turn", config=process_config),
        "naive": lambda: _naive_turn(client, naive_conv),
    }
    requests: dict[str, list[float]] = {name: [] for name in steps}
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    paths: dict[str, list[str]] = {}
    for _ in range(turns):
        for name, step in steps.items():
            start, cpu_start, before = time.perf_counter(), time.process_time(), counter.count
            step()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
            requests[name].append(counter.count - before)
            paths[name] = [
                path.split(" ")[0] + " " + _short(path) for path in counter.paths[before:]
            ]
    log(f"round trips at {stored}: seeding {seconds:.1f} s; requests {requests}")
    label = f"{stored:,} stored{llm}"
    naive = Stat(requests["naive"]).median
    section = Section()
    for arm, variant in ARMS.items():
        mine = Stat(requests[arm]).median
        section.rows.append(
            Row(
                "2 round trips",
                f"requests/turn, warm, {label}, {variant}",
                Stat(requests[arm]).fmt(digits=0),
                Stat(requests["naive"]).fmt(digits=0),
                f"{mine / naive:.2f}",
                f"<= {GOAL}, flat" if arm == "ours" else "-",
                verdict(mine, GOAL) if arm == "ours" else "info",
                f"requests: {', '.join(paths[arm])}",
            )
        )
    for arm, variant in ARMS.items():
        for what, data in (("time", wall), ("client CPU", cpu)):
            pair = Stat([a / b for a, b in zip(data[arm], data["naive"], strict=True)])
            section.rows.append(
                Row(
                    "2 round trips",
                    f"{what}/turn, warm, {label}, {variant}",
                    Stat(data[arm]).fmt(1000, " ms"),
                    Stat(data["naive"]).fmt(1000, " ms"),
                    pair.fmt(digits=2),
                    "-",
                    "info",
                )
            )
    section.notes.append(
        f"{label}: first turn in a fresh process (session lookup, model name, full read, "
        f"memory check, send): {cold[0]} requests; naive baseline = SDK auto-paging "
        f"(page {PAGE}, ends on an empty page) + send"
    )
    return section


def _short(path: str) -> str:
    """``/v1/conversations/conv-.../messages`` -> ``/v1/conversations/{id}/messages``."""
    parts = path.split(" ", 1)[-1].split("/")
    return "/".join("{id}" if part.startswith(("conv-", "agent-")) else part for part in parts)


def run(
    url: str,
    agent_id: str,
    sizes: list[int],
    turns: int,
    slow_id: str | None = None,
    slow_turns: int = 4,
) -> Section:
    """Requests, time and client CPU per warm turn at each size.

    With `slow_id` (an agent whose LLM takes 1 s a turn), the time rows of the smallest
    and the largest size are measured there too.
    """
    section = Section(
        notes=[
            "2 round trips: a warm default turn makes 3 requests at every size (read what is "
            "new, the GET of the agent's blocks that keeps shared memory exact, send); "
            f"{PROCESS} makes 2 (no check on a warm turn). "
            "Client CPU per warm turn still grows "
            "with the stored history, though a warm LettaChatMessageHistory read converts "
            "only what is new (the rest stays converted in its read thread): "
            "RunnableWithMessageHistory hands the whole history to the model on every run, "
            "LangChain's tracer serializes that whole input (dumpd at on_chat_model_start) "
            "and its history listener loads it back (_exit_history); section 9 splits the "
            "CPU by package."
        ]
    )
    for stored in sizes:
        part = _one_size(url, agent_id, stored, turns)
        section.rows.extend(part.rows)
        section.notes.extend(part.notes)
    for stored in sorted({sizes[0], sizes[-1]}) if slow_id else []:
        part = _one_size(url, slow_id or "", stored, slow_turns, ", LLM 1 s/turn")
        section.rows.extend(row for row in part.rows if row.metric.startswith("time/"))
    return section
