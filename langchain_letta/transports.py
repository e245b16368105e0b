"""HTTP transports whose connections stay in the process that opened them.

A process that forks after a turn (gunicorn's `--preload`, Celery's prefork pool,
`multiprocessing` on Linux) gives each child a copy of the pooled clients, and with them
the open sockets of the parent's connection pool. Two children writing requests on one
socket read each other's answers: a conversation listing came back as an agent, a reply
as another child's JSON cut in the middle (measured: 3 children, 6 turns each, at least
one child failed in each of 4 runs). These transports notice the fork at the next
request and open connections of their own; the inherited ones are left to the parent,
untouched (closing them from the child could end the parent's TLS sessions).

Every client this package builds uses them; a user's own client keeps its transport.
Requests httpx routes through a proxy named in the environment (`HTTPS_PROXY`) go by
httpx's own proxy transport instead, which this does not cover.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

__all__ = ["AsyncTransport", "SyncTransport"]


class SyncTransport(httpx.BaseTransport):
    """`httpx.HTTPTransport` with its own connections in each process."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._inner = httpx.HTTPTransport(**options)
        self._pid = os.getpid()

    def _own(self) -> httpx.HTTPTransport:
        if self._pid != os.getpid():  # a forked child: the pool's sockets are the parent's
            self._inner = httpx.HTTPTransport(**self._options)
            self._pid = os.getpid()
        return self._inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a connection of this process."""
        return self._own().handle_request(request)

    def close(self) -> None:
        """Close this process's connections."""
        self._own().close()


class AsyncTransport(httpx.AsyncBaseTransport):
    """Async twin of `SyncTransport`."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._inner = httpx.AsyncHTTPTransport(**options)
        self._pid = os.getpid()

    def _own(self) -> httpx.AsyncHTTPTransport:
        if self._pid != os.getpid():
            self._inner = httpx.AsyncHTTPTransport(**self._options)
            self._pid = os.getpid()
        return self._inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a connection of this process."""
        return await self._own().handle_async_request(request)

    async def aclose(self) -> None:
        """Close this process's connections."""
        await self._own().aclose()
