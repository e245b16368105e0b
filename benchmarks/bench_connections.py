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
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta

from benchmarks.common import Row, Section, log, tagged_conversation
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


def _chain(agent_id: str, url: str) -> RunnableWithMessageHistory:
    return RunnableWithMessageHistory(
        ChatLetta(agent_id=agent_id, base_url=url),
        lambda sid: LettaChatMessageHistory(session_id=sid, agent_id=agent_id, base_url=url),
    )


def _ours(url: str, agent_id: str, turns: int) -> int:
    with proxy_to(url) as proxy:
        chain = _chain(agent_id, proxy.url)
        config = {"configurable": {"session_id": f"bench-conn-{id(proxy)}"}}
        for _ in range(turns):
            chain.invoke(PROMPT, config=config)  # type: ignore[arg-type]
        return proxy.count


def _ours_async(url: str, agent_id: str, turns: int) -> int:
    async def chat(chain: RunnableWithMessageHistory, config: dict[str, Any]) -> None:
        for _ in range(turns):
            await chain.ainvoke(PROMPT, config=config)  # type: ignore[arg-type]

    with proxy_to(url) as proxy:
        config = {"configurable": {"session_id": f"bench-conn-async-{id(proxy)}"}}
        asyncio.run(chat(_chain(agent_id, proxy.url), config))
        return proxy.count


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


def run(url: str, agent_id: str, turns: int = 20) -> Section:
    warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory.*")
    ours, raw = _ours(url, agent_id, turns), _raw(url, agent_id, turns)
    ours_async = _ours_async(url, agent_id, turns)
    log(f"connections: ours {ours} (async {ours_async}), raw {raw} over {turns} turns")
    note = (
        "7 connections: letta-client stops reading a streamed send at `data: [DONE]` and "
        "closes the response before the body's end, so httpx drops the connection: a new "
        "one per send, even on one raw client. Letta ends the body only once it has "
        "finished the run (50-200 ms after [DONE] on the local stack), so a turn of ours "
        "returns at [DONE] too and hands the response to a drainer (`langchain_letta."
        "draining`) that reads it to its end off the turn's path: the connection goes back "
        "to the pool. A request sent meanwhile opens another one, so the pool holds as many "
        "as a turn has in flight at once (3 with the default memory check: the history read, "
        "the blocks read alongside it, the last send ending), whatever the number of turns. "
        "One connection per pool would need every turn to wait for the body's end "
        "(measured before: invoke 1.34x raw at 0 s)."
    )
    rows = []
    for label, count in (("invoke", ours), ("ainvoke", ours_async)):
        rows.append(
            Row(
                "7 connections",
                f"TCP connections, {turns} RunnableWithMessageHistory turns on one session "
                f"({label})",
                str(count),
                str(raw),
                f"{count / raw:.2f}" if raw else "-",
                f"<= {GOAL} (one per request in flight at once; one per pool costs a wait a turn)",
                "met" if count <= GOAL else f"MISSED ({count} > {GOAL})",
                "counted by a loopback TCP proxy in front of the server; raw = one letta-client "
                "listing and sending each turn",
            )
        )
    return Section(notes=[note], rows=rows)
