"""6. Traced memory while paging a long history with ``iter_messages``.

Flat means: the peak inside each window of the walk (the peak is reset at each
checkpoint, after a ``gc.collect()``) does not grow with the messages already seen, and
the memory still held at each checkpoint does not either. The overall peak is reported
too; it creeps up a little with uncollected cyclic garbage between full collections and
with bounded stdlib caches (``urllib.parse.urlsplit`` keeps 128 URLs; each page has a new
cursor URL), neither of which the walk holds on to.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from letta_client import Letta

from benchmarks.common import Row, Section, log, seed, tagged_conversation
from langchain_letta import LettaChatMessageHistory

PAGE = 100
GOAL = 1.25  # the last window's peak may be at most this times the first window's
MIB = 2**20


def _walk(
    history: LettaChatMessageHistory, checkpoints: list[int]
) -> tuple[dict[int, float], dict[int, float], float]:
    """(window peak MiB, held MiB) per checkpoint, and the overall peak MiB (one pass)."""
    gc.collect()
    tracemalloc.start()
    window: dict[int, float] = {}
    held: dict[int, float] = {}
    overall = 0.0
    seen = 0
    try:
        for _ in history.iter_messages(order="asc", page_size=PAGE):
            seen += 1
            if seen in checkpoints:
                peak = tracemalloc.get_traced_memory()[1]
                overall = max(overall, peak)
                window[seen] = peak / MIB
                gc.collect()
                held[seen] = tracemalloc.get_traced_memory()[0] / MIB
                tracemalloc.reset_peak()
        overall = max(overall, tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    return window, held, overall / MIB


def run(url: str, agent_id: str, stored: int) -> Section:
    client = Letta(base_url=url, timeout=300)
    conversation_id = tagged_conversation(client, agent_id, f"bench-mem-{time.monotonic_ns()}")
    seconds = seed(client, conversation_id, stored)
    log(f"memory: seeded {stored} messages in {seconds:.1f} s")
    history = LettaChatMessageHistory(
        conversation_id=conversation_id,
        agent_id=agent_id,
        client=client,
        async_client=None,
        base_url=url,
    )
    step = max(PAGE * 5, stored // 10)
    checkpoints = [1000, *range(1000 + step, stored, step), stored - 1]
    window, held, overall = _walk(history, sorted(set(checkpoints)))
    marks = sorted(window)
    first, last = marks[1], marks[-1]  # marks[0] closes the warm-up window 0-1,000
    growth = window[last] / window[first]
    section = Section()
    section.rows.append(
        Row(
            "6 memory",
            f"iter_messages over {stored:,} messages: window peak, last vs first window",
            f"{window[last]:.2f} MiB",
            f"{window[first]:.2f} MiB (first window)",
            f"{growth:.2f}",
            f"<= {GOAL} (flat)",
            "met" if growth <= GOAL else "MISSED",
            "window peaks MiB at "
            + ", ".join(f"{k:,}: {window[k]:.2f}" for k in marks)
            + "; held after gc at "
            + ", ".join(f"{k:,}: {held[k]:.2f}" for k in marks)
            + f"; overall peak {overall:.2f} MiB",
        )
    )
    section.notes.append(
        "memory: the few hundred bytes per page still held after gc are bounded stdlib "
        "caches (urllib.parse.urlsplit keeps 128 URLs, re keeps compiled patterns): "
        "each page request has a new cursor URL; nothing of the walk itself is kept."
    )
    section.notes.append(
        f"memory: seeding {stored:,} stored messages took {seconds:.1f} s "
        "(batched sends of 499 messages each)"
    )
    return section
