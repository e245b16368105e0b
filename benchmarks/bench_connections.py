"""7. TCP connections: 20 RunnableWithMessageHistory turns on one session vs one raw client.

Every connection to the server goes through a loopback proxy that counts them. The model
and the histories the factory builds share one client pool (same settings), so the count
is that pool's: the requests it had in flight at once, not one a turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import AsyncLetta, Letta

from benchmarks.common import Row, Section, Stat, log, ratio, tagged_conversation
from langchain_letta import ChatLetta, LettaChatMessageHistory

PROMPT = "hello through the proxy"
GOAL = 3
"""At most the requests a chain turn has in flight at once on the pool: the history's
read, the memory-block read alongside it (`langchain_letta.prefetch`) and the last
turn's send, whose body Letta is still ending (`langchain_letta.draining`)."""


class _Pipe(socketserver.BaseRequestHandler):
    """One proxied connection: bytes both ways until either side closes."""

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, CountingProxy)
        server.count += 1
        with socket.create_connection(server.target, timeout=300) as upstream:
            done = threading.Event()

            def pump(source: socket.socket, sink: socket.socket) -> None:
                with contextlib.suppress(OSError):
                    while data := source.recv(65536):
                        sink.sendall(data)
                done.set()
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)

            back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
            back.start()
            pump(self.request, upstream)
            back.join(timeout=300)


class CountingProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy on 127.0.0.1 (a free port) that counts the connections it accepts."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Pipe)
        self.target = target
        self.count = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def proxy_to(url: str) -> Iterator[CountingProxy]:
    parts = urlsplit(url)
    proxy = CountingProxy((parts.hostname or "127.0.0.1", parts.port or 80))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def one_connection_clients(url: str) -> tuple[Letta, AsyncLetta]:
    """A sync and an async letta-client whose pools hold at most one connection each."""
    one = httpx.Limits(max_connections=1)
    return (
        Letta(base_url=url, http_client=httpx.Client(limits=one, timeout=300)),
        AsyncLetta(base_url=url, http_client=httpx.AsyncClient(limits=one, timeout=300)),
    )


def _chain(agent_id: str, url: str, *, one: bool = False) -> RunnableWithMessageHistory:
    clients: dict[str, Any] = {"base_url": url}
    if one:
        clients["client"], clients["async_client"] = one_connection_clients(url)
    return RunnableWithMessageHistory(
        ChatLetta(agent_id=agent_id, **clients),
        lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=agent_id, **clients),
    )


def _ours(url: str, agent_id: str, turns: int, *, one: bool = False) -> tuple[int, list[float]]:
    with proxy_to(url) as proxy:
        chain = _chain(agent_id, proxy.url, one=one)
        config = {"configurable": {"session_id": f"bench-conn-{one}-{time.monotonic_ns()}"}}
        took = []
        for _ in range(turns):
            start = time.perf_counter()
            chain.invoke(PROMPT, config=config)  # type: ignore[arg-type]
            took.append(time.perf_counter() - start)
        return proxy.count, took


def _ours_async(
    url: str, agent_id: str, turns: int, *, one: bool = False
) -> tuple[int, list[float]]:
    took: list[float] = []

    async def chat(chain: RunnableWithMessageHistory, config: dict[str, Any]) -> None:
        for _ in range(turns):
            start = time.perf_counter()
            await chain.ainvoke(PROMPT, config=config)  # type: ignore[arg-type]
            took.append(time.perf_counter() - start)

    with proxy_to(url) as proxy:
        config = {"configurable": {"session_id": f"bench-conn-a-{one}-{time.monotonic_ns()}"}}
        asyncio.run(chat(_chain(agent_id, proxy.url, one=one), config))
        return proxy.count, took


def _raw(url: str, agent_id: str, turns: int) -> int:
    conversation = tagged_conversation(Letta(base_url=url), agent_id, "bench-conn-raw")
    with proxy_to(url) as proxy:
        client = Letta(base_url=proxy.url, timeout=300)
        for _ in range(turns):
            client.conversations.messages.list(conversation, limit=100)
            for _ in client.conversations.messages.create(
                conversation, messages=[{"role": "user", "content": PROMPT}]
            ):
                pass
        return proxy.count


def run(
    url: str, agent_id: str, turns: int = 20, slow_id: str | None = None, slow_turns: int = 8
) -> Section:
    """Connections by default and with one-connection clients; their time per turn.

    With `slow_id` (an agent whose LLM takes 1 s a turn) the time rows are measured
    there too, `slow_turns` turns an arm.
    """
    warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory.*")
    raw = _raw(url, agent_id, turns)
    counts: dict[tuple[str, bool], tuple[int, list[float]]] = {}
    slow: dict[tuple[str, bool], list[float]] = {}
    for one in (False, True):
        counts["invoke", one] = _ours(url, agent_id, turns, one=one)
        counts["ainvoke", one] = _ours_async(url, agent_id, turns, one=one)
        if slow_id:
            slow["invoke", one] = _ours(url, slow_id, slow_turns, one=one)[1]
            slow["ainvoke", one] = _ours_async(url, slow_id, slow_turns, one=one)[1]
    opened = {f"{label}{' one' if one else ''}": n for (label, one), (n, _) in counts.items()}
    log(f"connections over {turns} turns: ours {opened}, raw {raw}")
    note = (
        "7 connections: letta-client stops reading a streamed send at `data: [DONE]` and "
        "closes the response before the body's end, so httpx drops the connection: a new "
        "one per send, even on one raw client. Letta ends the body only once it has "
        "finished the run (50-200 ms after [DONE] on the local stack), so a turn of ours "
        "returns at [DONE] too and hands the response to a drainer (`langchain_letta."
        "draining`) that reads it to its end off the turn's path: the connection goes back "
        "to the pool. A request sent meanwhile opens another one, so by default the pool "
        "holds as many as a turn has in flight at once (3 with the default memory check: "
        "the history read, the blocks read alongside it, the last send ending), whatever "
        "the number of turns. One connection per pool is an opt-in: clients whose httpx "
        "pool allows one (`httpx.Limits(max_connections=1)`, see the README's Connections); "
        "each request then waits for the connection, so a turn waits for the last body's "
        "end and reads the blocks after the history (time rows: ours / ours-by-default)."
    )
    rows = []
    for label in ("invoke", "ainvoke"):
        for one in (False, True):
            count = counts[label, one][0]
            arm = "clients of one connection (opt-in)" if one else "default"
            goal = 1 if one else GOAL
            rows.append(
                Row(
                    "7 connections",
                    f"TCP connections, {turns} RunnableWithMessageHistory turns on one "
                    f"session ({label}, {arm})",
                    str(count),
                    str(raw),
                    f"{count / raw:.2f}" if raw else "-",
                    f"<= {goal}" + ("" if one else " (one per request in flight at once)"),
                    "met" if count <= goal else f"MISSED ({count} > {goal})",
                    "counted by a loopback TCP proxy in front of the server; raw = one "
                    "letta-client listing and sending each turn",
                )
            )
        times = [("0 s", counts[label, False][1], counts[label, True][1])]
        if slow:
            times.append(("1 s/turn", slow[label, False], slow[label, True]))
        for latency, default, single in times:
            rows.append(
                Row(
                    "7 connections",
                    f"time per turn ({label}), clients of one connection vs default, LLM {latency}",
                    Stat(single).fmt(1000, " ms"),
                    Stat(default).fmt(1000, " ms") + " (ours, default)",
                    ratio(single, default).fmt(digits=2),
                    "-",
                    "info",
                )
            )
    return Section(notes=[note], rows=rows)
