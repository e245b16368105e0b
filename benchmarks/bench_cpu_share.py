"""9. Whose CPU a warm RunnableWithMessageHistory turn spends, at 10 and at 1,000 stored.

A turn's client CPU is split among the packages that spend it: langchain-letta (ours),
LangChain (``langchain_core``) and the SDK (``letta_client``, ``httpx``, ``httpcore``,
``h11``, ``anyio``). The turns run in a child process that py-spy samples from outside
(1,000 samples a second of every thread that is not idle, so no thread waiting on a
socket or a lock is counted, and the sampler costs the child nothing). Each sample goes
to the package of its innermost frame that belongs to one of those; the standard
library, builtins and ``pydantic`` count to whoever called them (LangChain's messages
and letta-client's models are both pydantic). Samples of the turn's thread count only
inside the measured turns; the helper threads (the blocks read alongside the history,
the drainer reading a finished body to its end) run only around turns. The shares of
the samples split the child's measured CPU per turn.

A sampler inside the process (a thread reading the others' CPU clocks) was tried and
dropped: it looks when the GIL lets it, which is mostly when a thread blocks on a
socket, so the CPU spent before each request counted to the SDK.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Row, Section, log  # noqa: E402

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
MEASURED = "_measured_turn"
HELPERS = ("langchain-letta-blocks", "_Drainer", "draining.py", "prefetch.py")


def _share(filename: str) -> str | None:
    """The share a frame of `filename` counts to (None: its caller's)."""
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        top = parts[parts.index("site-packages") + 1]
        return None if top in PASS_THROUGH else BUCKETS.get(top, "other")
    if "langchain_letta" in parts:
        return "ours"
    return None  # the standard library, a builtin's caller, the benchmark itself


def shares_of(folded: str) -> dict[str, int]:
    """Samples per share from py-spy's raw output (``frame;frame;... count`` a line)."""
    samples: dict[str, int] = defaultdict(int)
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or not (
            any(MEASURED in f for f in frames) or any(h in stack for h in HELPERS)
        ):
            continue  # set-up, seeding, or the idle rest of the child
        share = "other"
        for frame in reversed(frames):
            filename = frame.rpartition("(")[2].rpartition(":")[0]
            found = _share(filename)
            if found is not None:
                share = found
                break
        samples[share] += int(count)
    return samples


# --------------------------------------------------------------------------- the child


def _measured_turn(chain: Any, config: Any) -> None:
    chain.invoke("next turn", config=config)


def child(url: str, agent_id: str, stored: int, turns: int) -> dict[str, Any]:
    """Seed, warm up, then run `turns` warm turns; CPU per turn (whole process)."""
    from langchain_core.runnables.history import RunnableWithMessageHistory
    from letta_client import Letta

    from benchmarks.common import seed, tagged_conversation
    from langchain_letta import ChatLetta, LettaChatMessageHistory

    client = Letta(base_url=url, timeout=300)
    session = f"bench-cpu-{stored}-{time.monotonic_ns()}"
    seconds = seed(client, tagged_conversation(client, agent_id, session), stored)
    chain = RunnableWithMessageHistory(
        ChatLetta(agent_id=agent_id, client=client),
        lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=agent_id, client=client),
    )
    config: Any = {"configurable": {"session_id": session}}
    chain.invoke("first turn in this process", config=config)
    chain.invoke("a warm turn", config=config)
    cpu: list[float] = []
    for _ in range(turns):
        time.sleep(0.2)  # the last turn's drain ends first
        start = time.process_time()
        _measured_turn(chain, config)
        time.sleep(0.2)  # this turn's drain is part of its cost
        cpu.append(time.process_time() - start)
    return {"cpu": cpu, "seeded": seconds}


# --------------------------------------------------------------------------- the parent


def _one_size(url: str, agent_id: str, stored: int, turns: int) -> dict[str, float]:
    """Milliseconds per share of a warm turn's CPU at `stored` stored messages."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        folded, result = Path(tmp, "stacks.txt"), Path(tmp, "result.json")
        command = [sys.executable, __file__, url, agent_id, str(stored), str(turns), str(result)]
        record = ["record", "--rate", "1000", "--format", "raw", "--full-filenames"]
        subprocess.run(
            [spy, *record, "--nonblocking", "-o", str(folded), "--", *command],
            check=True,
            capture_output=True,
        )
        samples = shares_of(folded.read_text(encoding="utf-8"))
        measured = json.loads(result.read_text(encoding="utf-8"))
    cpu = 1000 * statistics.fmean(measured["cpu"])
    total = sum(samples.values()) or 1
    ms = {name: cpu * samples[name] / total for name in SHARES}
    ms["all"] = cpu
    log(
        f"cpu share at {stored} stored (seeded in {measured['seeded']:.1f} s, {total} samples): "
        + ", ".join(f"{name} {value:.1f} ms" for name, value in ms.items())
    )
    return ms


def run(url: str, agent_id: str, sizes: Iterable[int], turns: int) -> Section:
    sizes = list(sizes)
    measured = {stored: _one_size(url, agent_id, stored, turns) for stored in sizes}
    section = Section(
        notes=[
            f"9 CPU share: client CPU of a warm RunnableWithMessageHistory turn (default "
            f"ChatLetta, one sync letta-client given; mean of {turns} turns a size, its "
            "blocks read and its stream's drain included), split by py-spy samples "
            "(1,000 a second, idle threads left out) among the packages: the innermost "
            "frame of langchain_letta (ours), langchain_core (LangChain) or "
            "letta_client/httpx/httpcore/h11/anyio (SDK) takes a sample; the standard "
            "library, builtins and pydantic count to their caller; 'other': none of them "
            "on the stack. LangChain's share grows with the history: its tracer dumps the "
            "whole input at on_chat_model_start and RunnableWithMessageHistory's listener "
            "loads it back (_exit_history)."
        ]
    )
    small, large = measured[sizes[0]], measured[sizes[-1]]
    for name in (*SHARES, "all"):
        grows = large[name] / max(small[name], 1e-9)
        is_ours = name == "ours"
        section.rows.append(
            Row(
                "9 CPU share",
                f"{name}: CPU of a warm turn (mean), {sizes[0]:,} -> {sizes[-1]:,} stored",
                f"{small[name]:.1f} ms -> {large[name]:.1f} ms (n={turns})",
                "-",
                f"{grows:.2f}",
                f"<= {FLAT} (flat)" if is_ours else "-",
                ("met" if grows <= FLAT else f"MISSED ({grows:.2f})") if is_ours else "info",
            )
        )
    return section


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory.*")
    url, agent_id, stored, turns, out = sys.argv[1:6]
    Path(out).write_text(json.dumps(child(url, agent_id, int(stored), int(turns))))
