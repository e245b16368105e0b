#!/usr/bin/env python3
"""Run the langchain-letta benchmarks live against a Letta server.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # a short run (fewer repeats, smaller histories)
    python benchmarks/run.py --only 1,4 # some sections

The server is ``$LETTA_BASE_URL``, else the local stack of ``scripts/letta_stack.py``
(started when needed). Prints a table and writes it to ``benchmarks/RESULTS.md``.
Every figure is a median over repeats with its interquartile range ``[q1-q3]``; every
ratio is ours / raw, taken pair by pair from interleaved runs in the same process.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    bench_concurrency,
    bench_connections,
    bench_cpu_share,
    bench_history_read,
    bench_latency,
    bench_memory,
    bench_roundtrips,
    bench_store,
    bench_stream_cost,
)
from benchmarks.common import SLOW_MODEL_HANDLE, Row, Section, base_url, log, new_agent

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    latency_repeats: int
    rt_sizes: tuple[int, ...]
    rt_turns: int
    read_stored: int
    read_repeats: int
    stream_repeats: int
    sessions: int
    waves: int
    memory_stored: int
    slow_repeats: int
    slow_waves: int
    share_turns: int


FULL = Plan(20, (10, 100, 1000), 8, 1000, 15, 15, 32, 12, 10_000, 10, 6, 60)
QUICK = Plan(8, (10, 100, 1000), 3, 1000, 5, 5, 32, 3, 2_000, 4, 2, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8,9", help="sections to run, e.g. 1,4")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    # RunnableWithMessageHistory is deprecated toward LangGraph; we measure it on purpose.
    warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory.*")
    only = {int(part) for part in args.only.split(",") if part.strip()}
    started = time.perf_counter()
    url = base_url()
    from letta_client import Letta

    admin = Letta(base_url=url, timeout=300)
    agent_id = new_agent(admin, "suite")
    slow_id = None  # sections 1, 2, 5 and 7 also run on an LLM that takes 1 s a turn, if offered
    if only & {1, 2, 5, 7} and SLOW_MODEL_HANDLE in [m.handle for m in admin.models.list()]:
        slow_id = new_agent(admin, "slow", SLOW_MODEL_HANDLE)
    elif only & {1, 2, 5, 7}:
        log(f"{SLOW_MODEL_HANDLE} is not offered: sections 1, 2, 5 and 7 run at 0 s a turn only")
    sections: list[Section] = []
    try:
        steps: dict[int, Callable[[], Section]] = {
            1: lambda: bench_latency.run(
                url, agent_id, plan.latency_repeats, slow_id, plan.slow_repeats
            ),
            2: lambda: bench_roundtrips.run(
                url, agent_id, list(plan.rt_sizes), plan.rt_turns, slow_id
            ),
            3: lambda: bench_history_read.run(url, agent_id, plan.read_stored, plan.read_repeats),
            4: lambda: bench_stream_cost.run(url, plan.stream_repeats),
            5: lambda: bench_concurrency.run(
                url, agent_id, plan.sessions, plan.waves, slow_id, plan.slow_waves
            ),
            6: lambda: bench_memory.run(url, agent_id, plan.memory_stored),
            7: lambda: bench_connections.run(url, agent_id, slow_id=slow_id),
            8: lambda: bench_store.run(url, max(3, plan.latency_repeats // 2)),
            9: lambda: bench_cpu_share.run(url, agent_id, (10, 1000), plan.share_turns),
        }
        for number, step in steps.items():
            if number in only:
                log(f"section {number} ...")
                sections.append(step())
    finally:
        for agent in (agent_id, slow_id):
            if agent:
                admin.agents.delete(agent)
    elapsed = time.perf_counter() - started
    report = render(sections, args, elapsed)
    print(report)
    if not args.no_write:
        RESULTS.write_text(report + kept_sections(), encoding="utf-8")
        log(f"wrote {RESULTS}")


KEPT = "<!-- Sections below come from the standalone benchmarks; run.py keeps them. -->"


def kept_sections() -> str:
    """What RESULTS.md holds from `KEPT` on (the standalone benchmarks' sections)."""
    if not RESULTS.exists():
        return ""
    text = RESULTS.read_text(encoding="utf-8")
    return "\n" + text[text.index(KEPT) :] if KEPT in text else ""


def render(sections: list[Section], args: argparse.Namespace, elapsed: float) -> str:
    rows: list[Row] = [row for section in sections for row in section.rows]
    head = ["§", "metric", "langchain-letta", "raw letta-client", "ratio", "goal", "verdict"]
    lines = [
        "# Benchmarks",
        "",
        f"Command: `python benchmarks/run.py{' --quick' if args.quick else ''}` "
        f"({elapsed:.0f} s), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"Python {platform.python_version()}, letta-client {version('letta-client')}, "
        f"langchain-core {version('langchain-core')}, local Letta 0.16.8 with the fake LLM.",
        "",
        "Figures: median [q1-q3] (n = repeats). Ratios: ours / raw per interleaved pair.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [row.section, row.metric, row.ours, row.raw, row.ratio, row.goal, row.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    missed = [row for row in rows if row.verdict.startswith("MISSED")]
    if missed:
        lines += ["", "## Goals missed (why: see the notes)", ""]
        lines += [f"- {row.section}, {row.metric}: {row.verdict} ({row.ratio})" for row in missed]
    notes = [f"- {row.section}, {row.metric}: {row.note}" for row in rows if row.note]
    notes += [f"- {note}" for section in sections for note in section.notes]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
