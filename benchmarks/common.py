"""Shared helpers: statistics, the live server, agents, request counting, seeding."""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from letta_client import AsyncLetta, Letta

from langchain_letta.sessions import session_tag

ROOT = Path(__file__).resolve().parent.parent
MODEL_HANDLE = "openai-proxy/fake-llm"
SLOW_MODEL_HANDLE = "openai-proxy/fake-llm-slow"
"""The fake LLM's model that takes 1 s per completion, like a real LLM's turn."""
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
SEED_BATCH = 499  # messages per seeding send (the agent's one reply makes it 500 stored)


# --------------------------------------------------------------------------- statistics


@dataclass
class Stat:
    """A median over repeats with its interquartile range and min-max."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q1(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.samples, 0.75)

    def fmt(self, scale: float = 1.0, unit: str = "", digits: int = 1) -> str:
        """``median [q1-q3] unit (n=...)``."""
        m, lo, hi = self.median * scale, self.q1 * scale, self.q3 * scale
        return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]{unit} (n={len(self.samples)})"


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(a: list[float], b: list[float]) -> Stat:
    """Per-pair ratios a[i] / b[i] of interleaved runs (robust to drifting load)."""
    return Stat([x / y for x, y in zip(a, b, strict=True) if y > 0])


@dataclass
class Row:
    """One line of the results table."""

    section: str
    metric: str
    ours: str
    raw: str
    ratio: str
    goal: str
    verdict: str
    note: str = ""


@dataclass
class Section:
    """What one benchmark returns: table rows and free-text findings."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else f"MISSED by {100 * (value / limit - 1):.0f}%"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- server


def base_url() -> str:
    """``$LETTA_BASE_URL``, else the project's local stack (started when needed)."""
    if os.environ.get("LETTA_BASE_URL"):
        return os.environ["LETTA_BASE_URL"].rstrip("/")
    sys.path.insert(0, str(ROOT / "scripts"))
    import letta_stack  # type: ignore[import-not-found]

    return str(letta_stack.ensure_up()).rstrip("/")


@dataclass
class Counter:
    """Counts HTTP requests made through clients built by :func:`counted_clients`."""

    count: int = 0
    paths: list[str] = field(default_factory=list)

    def hook(self, request: httpx.Request) -> None:
        self.count += 1
        self.paths.append(f"{request.method} {request.url.path}")

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    @contextmanager
    def measure(self) -> Iterator[list[int]]:
        """``with counter.measure() as n: ...`` then ``n[0]`` is the requests made inside."""
        box = [0]
        start = self.count
        try:
            yield box
        finally:
            box[0] = self.count - start


def counted_clients(url: str, counter: Counter, timeout: float = 300.0) -> tuple[Letta, AsyncLetta]:
    """A sync and an async letta-client whose requests ``counter`` counts."""
    sync_http = httpx.Client(event_hooks={"request": [counter.hook]}, timeout=timeout)
    async_http = httpx.AsyncClient(event_hooks={"request": [counter.ahook]}, timeout=timeout)
    return (
        Letta(base_url=url, http_client=sync_http, timeout=timeout),
        AsyncLetta(base_url=url, http_client=async_http, timeout=timeout),
    )


def new_agent(client: Letta, label: str, model: str = MODEL_HANDLE) -> str:
    """A fresh agent on the fake LLM (or ``model``); the caller deletes it."""
    agent = client.agents.create(
        name=f"bench-{label}-{uuid.uuid4().hex[:8]}",
        model=model,
        embedding=EMBEDDING_HANDLE,
        memory_blocks=[
            {"label": "human", "value": "A benchmark user."},
            {"label": "persona", "value": "A benchmark agent."},
        ],
    )
    return str(agent.id)


def tagged_conversation(client: Letta, agent_id: str, session_id: str) -> str:
    """A conversation tagged as ``session_id``'s, as ``ChatLetta`` would create it."""
    return str(client.conversations.create(agent_id=agent_id, summary=session_tag(session_id)).id)


def send(client: Letta, conversation_id: str, text: str, **options: Any) -> list[Any]:
    """One raw turn, consumed to the end."""
    stream = client.conversations.messages.create(
        conversation_id, messages=[{"role": "user", "content": text}], **options
    )
    return list(stream)


def seed(client: Letta, conversation_id: str, stored: int) -> float:
    """Grow the conversation to about ``stored`` stored messages; return the seconds taken.

    One send may carry many messages; alternating user / assistant messages make the
    history look like real turns. Each send stores its messages plus the agent's reply.
    """
    start = time.perf_counter()
    have = len(client.conversations.messages.list(conversation_id, limit=1000).items)
    while have < stored:
        batch = min(SEED_BATCH, max(1, stored - have - 1))
        messages: list[Any] = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"seed {have + i}"}
            for i in range(batch)
        ]
        if messages[-1]["role"] != "user":
            messages.append({"role": "user", "content": "seed end"})
        for _ in client.conversations.messages.create(conversation_id, messages=messages):
            pass
        have += len(messages) + 1
    return time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
