"""7. TCP connections: 20 RunnableWithMessageHistory turns on one session vs one raw client.

Every connection to the server goes through a loopback proxy that counts them. The goal
(at most one connection per client pool) holds when the model and the histories the
factory builds share their clients' connections.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit

from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta

from benchmarks.common import Row, Section, log, tagged_conversation
from langchain_letta import ChatLetta, LettaChatMessageHistory

PROMPT = "hello through the proxy"
GOAL = 2  # one pool for the model's sync client, one for the histories', at most


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


def _ours(url: str, agent_id: str, turns: int) -> int:
    with proxy_to(url) as proxy:
        model = ChatLetta(agent_id=agent_id, base_url=proxy.url)
        chain = RunnableWithMessageHistory(
            model,
            lambda sid: LettaChatMessageHistory(
                session_id=sid, agent_id=agent_id, base_url=proxy.url
            ),
        )
        config = {"configurable": {"session_id": f"bench-conn-{id(proxy)}"}}
        for _ in range(turns):
            chain.invoke(PROMPT, config=config)  # type: ignore[arg-type]
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
    log(f"connections: ours {ours}, raw {raw} over {turns} turns")
    note = (
        "7 connections: a streamed send costs a new connection even on one raw client: "
        "letta-client's Stream stops at `data: [DONE]` and closes the response before the "
        "chunked body's last bytes are read, so httpx drops the connection instead of "
        "pooling it (listings reuse theirs). One connection per pool needs both a shared "
        "pool and the rest of each stream read after [DONE]."
    )
    return Section(
        notes=[note],
        rows=[
            Row(
                "7 connections",
                f"TCP connections, {turns} RunnableWithMessageHistory turns on one session",
                str(ours),
                str(raw),
                f"{ours / raw:.1f}" if raw else "-",
                f"<= {GOAL} (one per client pool)",
                "met" if ours <= GOAL else f"MISSED ({ours} > {GOAL})",
                "counted by a loopback TCP proxy in front of the server; raw = one letta-client "
                "listing and sending each turn",
            )
        ],
    )
