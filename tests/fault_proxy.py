"""A loopback TCP proxy that breaks Letta traffic on purpose, for fault-injection tests.

It sits between the client and the Letta server on 127.0.0.1 and, per its ``mode``:

* ``cut_streams``: forwards each server-sent-event response up to its first event, then
  drops the connection (the client sees a broken stream mid-turn);
* ``delay``: holds every response chunk ``delay`` seconds;
* ``fail_posts``: answers the next ``budget`` POSTs with HTTP 503 without forwarding them;
* ``answer_sends``: answers the next ``budget`` message sends (POSTs to ``.../messages``)
  with ``answer`` (a whole HTTP response, see :func:`http_200`) without forwarding them;
* ``hold_sends``: holds the next ``budget`` message sends until ``release`` is set,
  then forwards them (a send still on its way when the client gives up);
* ``hold_creates``: forwards the next ``budget`` conversation creates (POSTs to
  ``/v1/conversations/``) and holds their responses until ``release`` is set (a create
  the server made whose answer the client never saw);
* ``stall_sends``: forwards the next ``budget`` message sends and relays each response
  up to its first server-sent event (the client has the run's id), then holds the rest
  until ``release`` is set (a stream that stalls mid-turn);
* ``pass``: forwards everything untouched.

Nothing here knows HTTP beyond adding ``Connection: close`` to each request (one
exchange per connection) and finding the end of the response headers and of the first
SSE event. A hold lasts until the test sets ``release`` (never a fixed time), so what
the client sees does not depend on how fast a loaded machine is; ``held`` counts the
holds begun and ``sends`` the message sends seen (for a test to wait on); ``gates``
has one event per hold, in order, to let them through one at a time.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal[
    "pass",
    "cut_streams",
    "delay",
    "fail_posts",
    "answer_sends",
    "hold_sends",
    "hold_creates",
    "stall_sends",
]
Hold = Literal["answer", "after_first_event"] | None
_CHUNK = 65536
_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: 27\r\nconnection: close\r\n\r\n"
    b'{"detail":"fault injected"}'
)


@dataclass
class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream_port``, breaking traffic per ``mode``."""

    upstream_port: int
    mode: Mode = "pass"
    delay: float = 0.0
    budget: int = 0
    answer: bytes = b""
    cuts: int = 0
    held: int = 0
    sends: int = 0
    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    gates: list[threading.Event] = field(default_factory=list)
    _server: socket.socket = field(init=False)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stopping.set()
        self.release.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_budget(self) -> bool:
        with self._lock:
            if self.budget > 0:
                self.budget -= 1
                return True
            return False

    def _gate(self) -> threading.Event:
        """A new hold (counted in `held`), with its own gate in `gates`."""
        gate = threading.Event()
        with self._lock:
            self.held += 1
            self.gates.append(gate)
        return gate

    def _wait(self, gate: threading.Event) -> None:
        """Hold until the test opens `gate` or sets `release` (which opens them all)."""
        while not gate.wait(0.05) and not self.release.is_set():
            pass

    def _serve(self, client: socket.socket) -> None:
        try:
            first = client.recv(_CHUNK)
            if self.mode == "fail_posts" and first.startswith(b"POST") and self._take_budget():
                client.sendall(_UNAVAILABLE)
                return
            request_line = first.split(b"\r\n", 1)[0]
            is_send = first.startswith(b"POST") and b"/messages" in request_line
            is_create = re.match(rb"POST /v1/conversations/?[ ?]", request_line) is not None
            if is_send:
                with self._lock:
                    self.sends += 1
            if self.mode == "answer_sends" and is_send and self._take_budget():
                client.sendall(self.answer)
                client.close()
                return
            hold: Hold = None
            gate = threading.Event()
            if self.mode == "hold_sends" and is_send and self._take_budget():
                self._wait(self._gate())
            elif self.mode == "hold_creates" and is_create and self._take_budget():
                gate = self._gate()
                hold = "answer"
            elif self.mode == "stall_sends" and is_send and self._take_budget():
                hold = "after_first_event"
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        upstream.sendall(_one_exchange(first))
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        self._relay_responses(upstream, client, hold, gate)

    def _relay_responses(
        self, upstream: socket.socket, client: socket.socket, hold: Hold, gate: threading.Event
    ) -> None:
        buffered = b""
        passing = self.mode != "cut_streams" and hold != "after_first_event"
        try:
            while data := upstream.recv(_CHUNK):
                if hold == "answer":
                    self._wait(gate)
                    hold = None
                if self.mode == "delay":
                    time.sleep(self.delay)
                if passing:
                    client.sendall(data)
                    continue
                buffered += data
                cut_at = _first_event_end(buffered)
                if cut_at is None:
                    head_end = buffered.find(b"\r\n\r\n")
                    if head_end >= 0 and b"text/event-stream" not in buffered[:head_end].lower():
                        client.sendall(buffered)
                        buffered, passing = b"", True
                    continue
                client.sendall(buffered[:cut_at])
                if hold == "after_first_event":
                    self._wait(self._gate())
                    client.sendall(buffered[cut_at:])
                    buffered, passing = b"", True
                    continue
                with self._lock:
                    self.cuts += 1
                return
            client.sendall(buffered)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _one_exchange(request_head: bytes) -> bytes:
    """The request with ``Connection: close``, so its connection carries one exchange."""
    line_end = request_head.find(b"\r\n")
    rest = re.sub(rb"(?im)^connection:[^\r\n]*\r\n", b"", request_head[line_end + 2 :])
    return request_head[: line_end + 2] + b"Connection: close\r\n" + rest


def _first_event_end(buffered: bytes) -> int | None:
    """End of the first SSE event of an event-stream response in ``buffered``, if there."""
    head_end = buffered.find(b"\r\n\r\n")
    if head_end < 0 or b"text/event-stream" not in buffered[:head_end].lower():
        return None
    event_end = buffered.find(b"\n\n", buffered.find(b"data:", head_end))
    if event_end < 0 or buffered.find(b"data:", head_end) < 0:
        return None
    return event_end + 2


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            target.sendall(data)
    except OSError:
        pass


def http_200(body: bytes, content_type: str = "text/event-stream") -> bytes:
    """A whole HTTP 200 response with ``body``, for the ``answer_sends`` mode."""
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
