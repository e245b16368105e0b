"""9. Whose CPU a warm RunnableWithMessageHistory turn spends, at 10 and at 1,000 stored.

A turn's client CPU is split among the packages that spend it: langchain-letta (ours),
LangChain (``langchain_core``) and the SDK (``letta_client``, ``httpx``, ``httpcore``,
``h11``, ``anyio``). A sampler thread wakes every half millisecond, reads each other
thread's CPU clock and gives the CPU it used since the last look to the package of its
innermost frame that belongs to one of those; the standard library, builtins and
``pydantic`` count to whoever called them (LangChain's messages and letta-client's
models are both pydantic). Every thread is sampled: the turn's, the thread that reads
the agent's blocks alongside the history, the drainer that reads a finished body to its
end. A tracing profiler (cProfile) would add its own cost to every call and inflate the
packages that make many small ones; this one costs the turn only the sampler's slices
of the GIL (the switch interval is cut to 0.1 ms while it runs, so it can look often).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta

from benchmarks.common import Row, Section, Stat, log, seed, tagged_conversation
from langchain_letta import ChatLetta, LettaChatMessageHistory

BUCKETS = {
    "langchain_letta": "ours",
    "langchain_core": "LangChain",
    "langchain": "LangChain",
    "letta_client": "SDK",
    "httpx": "SDK",
    "httpcore": "SDK",
    "h11": "SDK",
    "anyio": "SDK",
}
PASS_THROUGH = {"pydantic", "pydantic_core", "typing_extensions"}
SHARES = ("ours", "LangChain", "SDK", "other")
FLAT = 1.25  # ours at 1,000 stored over ours at 10
LOOK = 0.0005


def _share(filename: str) -> str | None:
    """The share a frame of `filename` counts to (None: its caller's)."""
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        top = parts[parts.index("site-packages") + 1]
        return None if top in PASS_THROUGH else BUCKETS.get(top, "other")
    if "langchain_letta" in parts:
        return "ours"
    return None  # the standard library, a builtin's caller, the benchmark itself


def share_of(frame: FrameType | None) -> str:
    """The share of the innermost frame on `frame`'s stack that has one."""
    while frame is not None:
        share = _share(frame.f_code.co_filename)
        if share is not None:
            return share
        frame = frame.f_back
    return "other"


class Sampler:
    """CPU seconds per share of every other thread, while the ``with`` block runs."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._before: dict[int, float] = {}

    def __enter__(self) -> Sampler:
        self._switch = sys.getswitchinterval()
        self._before = {ident: _cpu(ident) or 0.0 for ident in sys._current_frames()}
        sys.setswitchinterval(0.0001)
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch)

    def _run(self) -> None:
        me = threading.get_ident()
        last: dict[int, float] = dict(self._before)
        while True:
            stopping = self._stop.wait(LOOK)
            for ident, frame in sys._current_frames().items():
                now = _cpu(ident) if ident != me else None
                if now is not None:
                    # a thread started inside the block counts from its start
                    self.seconds[share_of(frame)] += now - last.get(ident, 0.0)
                    last[ident] = now
            if stopping:
                return


def _cpu(ident: int) -> float | None:
    """The CPU seconds thread `ident` has used (None: it has ended)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, ProcessLookupError):
        return None


def _chain(agent_id: str, client: Letta) -> RunnableWithMessageHistory:
    model = ChatLetta(agent_id=agent_id, client=client)
    return RunnableWithMessageHistory(
        model, lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=agent_id, client=client)
    )


def _one_size(url: str, agent_id: str, stored: int, turns: int) -> dict[str, list[float]]:
    """Milliseconds per share of each warm turn's CPU at `stored` stored messages."""
    client = Letta(base_url=url, timeout=300)
    session = f"bench-cpu-{stored}-{time.monotonic_ns()}"
    seconds = seed(client, tagged_conversation(client, agent_id, session), stored)
    chain = _chain(agent_id, client)
    config: Any = {"configurable": {"session_id": session}}
    chain.invoke("first turn in this process", config=config)
    chain.invoke("a warm turn", config=config)
    turns_ms: dict[str, list[float]] = {name: [] for name in (*SHARES, "all")}
    for _ in range(turns):
        time.sleep(0.2)  # the last turn's drain ends before this turn is sampled
        with Sampler() as sampler:
            chain.invoke("next turn", config=config)
            time.sleep(0.2)  # this turn's drain is part of its cost
        for name in SHARES:
            turns_ms[name].append(1000 * sampler.seconds[name])
        turns_ms["all"].append(1000 * sum(sampler.seconds.values()))
    log(
        f"cpu share at {stored} stored (seeded in {seconds:.1f} s): "
        + ", ".join(f"{name} {Stat(v).median:.1f} ms" for name, v in turns_ms.items())
    )
    return turns_ms


def run(url: str, agent_id: str, sizes: Iterable[int], turns: int) -> Section:
    sizes = list(sizes)
    measured = {stored: _one_size(url, agent_id, stored, turns) for stored in sizes}
    section = Section(
        notes=[
            f"9 CPU share: client CPU of a warm RunnableWithMessageHistory turn (default "
            f"ChatLetta, one sync letta-client given; mean of {turns} turns a size), every "
            "thread's CPU clock read each 0.5 ms and given to the package of its innermost "
            "frame among langchain_letta (ours), langchain_core (LangChain) and "
            "letta_client/httpx/httpcore/h11/anyio (SDK); the standard library, builtins "
            "and pydantic count to their caller; 'other': none of them on the stack. The "
            "drain of each turn's stream and the blocks read alongside the history are "
            "included (all threads)."
        ]
    )
    # means: a share is a few samples a turn, so its median jumps by whole samples;
    # the mean over many turns is steady (a garbage collection counts to the frame that
    # set it off, wherever that is)
    small, large = measured[sizes[0]], measured[sizes[-1]]
    for name in (*SHARES, "all"):
        before, after = statistics.fmean(small[name]), statistics.fmean(large[name])
        grows = after / max(before, 1e-9)
        is_ours = name == "ours"
        section.rows.append(
            Row(
                "9 CPU share",
                f"{name}: CPU of a warm turn (mean), {sizes[0]:,} -> {sizes[-1]:,} stored",
                f"{before:.1f} ms -> {after:.1f} ms (n={len(small[name])})",
                "-",
                f"{grows:.2f}",
                f"<= {FLAT} (flat)" if is_ours else "-",
                ("met" if grows <= FLAT else f"MISSED ({grows:.2f})") if is_ours else "info",
            )
        )
    return section
