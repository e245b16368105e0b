"""letta-clients shared by every model, history and store with the same settings.

Building a letta-client opens a connection pool; a `RunnableWithMessageHistory` factory
builds a history per turn. So clients are pooled by their settings (server URL, API key,
timeout, retries), as langchain-anthropic pools its HTTP clients: every `ChatLetta`,
`LettaChatMessageHistory` and `LettaStore` with the same settings shares one sync and one
async client, and with them their connections (a TLS handshake per process, not per
turn). The pool is `langchain_letta.state.CLIENTS`.

A client given by the user is used as given. When only one of the two is given, the
other is derived from it (same server, key, headers, timeout and retries), so async calls
never go to another server than sync ones. It is derived once per given client and its
settings (kept in `langchain_letta.state.TWINS` while the given one lives): a factory
that builds a history per turn around one client does not build a client (and a pool)
per turn, and a client whose key changed gets a twin with the new key.

The clients this package builds keep every connection their pool may open alive
(`LIMITS`: 100, where letta-client keeps 20 of its 100). httpcore 1.0.9's pool closes an
idle connection whenever it holds more connections in all than it keeps alive
(encode/httpcore#1000), and may close one it has just handed to another thread's request
before that request starts on it (encode/httpcore#1110): that request's read then fails
with `EBADF`. Threads sharing a client, each turn with a body still being drained, pass
20 connections; at 100 kept alive neither happens below 100 in use (measured: 16
threads, 2,000 calls on these pooled clients against a fake that ends each body 0.5 s
after `[DONE]`: 6 calls failed and the pool closed 7,552 connections at letta-client's
limits, none and 36 at these). A client given by the user keeps its own limits.

Their connections stay in the process that opened them: a worker forked after a turn
opens its own instead of sharing the parent's sockets with its siblings
(`langchain_letta.transports`).

An async client is bound to the event loop it first ran in. A pooled or derived one
therefore has one copy per event loop (`for_running_loop`), so an object outlives
`asyncio.run()`; a user's async client is used as given. The copies of closed loops are
let go when the next loop arrives, so a process that runs each request in its own
`asyncio.run()` keeps one copy per loop still open (200 such calls: 187 file
descriptors and 240 MB of RSS kept before, 7 and 102 MB with this).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from typing import Any

import httpx
import letta_client
from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

from langchain_letta.connection import Endpoint
from langchain_letta.state import CLIENTS, TWINS
from langchain_letta.transports import AsyncTransport, SyncTransport

__all__ = ["LIMITS", "for_running_loop", "shared_clients"]

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=5.0)
"""The connection pool of every client this package builds (see the module docstring)."""


def _bounded_pause(pause: float, timeout: object) -> float:
    """A retry's pause, never longer than the request timeout (a `Retry-After` may ask more)."""
    limit = timeout if isinstance(timeout, (int, float)) else getattr(timeout, "read", None)
    return min(pause, float(limit)) if isinstance(limit, (int, float)) else pause


class _Letta(Letta):
    """letta-client whose retry pauses never outlive the request timeout."""

    def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
        return _bounded_pause(super()._calculate_retry_timeout(*args, **kwargs), self.timeout)


class _AsyncLetta(AsyncLetta):
    """Async twin of `_Letta`, with its copies per event loop (see `for_running_loop`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.home_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self.loop_copies: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLetta] = (
            weakref.WeakKeyDictionary()
        )
        self.loop_guard = threading.Lock()

    def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
        return _bounded_pause(super()._calculate_retry_timeout(*args, **kwargs), self.timeout)


def _digest(secret: SecretStr | None) -> str | None:
    """What identifies a secret in a pool key, without holding the secret itself."""
    if secret is None:
        return None
    return hashlib.sha256(secret.get_secret_value().encode("utf-8")).hexdigest()


def _options(endpoint: Endpoint, timeout: float | None, max_retries: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "base_url": endpoint.url,
        "api_key": endpoint.api_key.get_secret_value() if endpoint.api_key else None,
        "max_retries": max_retries,
    }
    if endpoint.basic_auth is not None and endpoint.api_key is None:
        options["default_headers"] = {"Authorization": endpoint.basic_auth.get_secret_value()}
    if timeout is not None:
        options["timeout"] = timeout
    return options


def _options_of(client: Letta | AsyncLetta) -> dict[str, Any]:
    """The settings of `client`, to build its twin with."""
    return {
        "base_url": client.base_url,
        "api_key": client.api_key,
        "project_id": client.project_id,
        "project": client.project,
        "timeout": client.timeout,
        "max_retries": client.max_retries,
        "default_headers": dict(client._custom_headers),
        "default_query": dict(client._custom_query),
    }


_TWIN_GUARD = threading.Lock()


class _SyncPool(letta_client.DefaultHttpxClient):
    """A sync pool with `LIMITS`, closed when it is collected (as letta-client's own).

    Its connections stay in the process that opened them (`langchain_letta.transports`).
    """

    def __init__(self) -> None:
        super().__init__(limits=LIMITS, transport=SyncTransport(limits=LIMITS))

    def __del__(self) -> None:
        try:  # no module globals: at interpreter exit they may be gone already
            if not self.is_closed:
                self.close()
        except Exception:  # a collected pool has no one to tell
            pass


_CLOSING: set[asyncio.Task[None]] = set()
"""Pools being closed as they were collected."""


class _AsyncPool(letta_client.DefaultAsyncHttpxClient):
    """An async pool with `LIMITS`, closed when it is collected inside its event loop.

    Its connections stay in the process that opened them (`langchain_letta.transports`),
    and belong to the loop it was built in (when built inside one): closing
    them from another loop fails. Collected after that loop was closed, the pool leaves
    its sockets to their transports, which close them as they are collected.
    """

    def __init__(self) -> None:
        super().__init__(limits=LIMITS, transport=AsyncTransport(limits=LIMITS))
        try:
            self.loop: weakref.ref[asyncio.AbstractEventLoop] | None = weakref.ref(
                asyncio.get_running_loop()
            )
        except RuntimeError:  # built outside a loop: closed in whichever loop collects it
            self.loop = None

    def __del__(self) -> None:
        try:  # as `_SyncPool.__del__`; outside a running loop this raises and ends here
            if self.is_closed:
                return
            running = asyncio.get_running_loop()
            if self.loop is None or self.loop() is running:
                closing = running.create_task(self.aclose())
                _CLOSING.add(closing)  # held until done: the loop keeps tasks weakly
                closing.add_done_callback(_CLOSING.discard)
        except Exception:
            pass


def _derived(given: Any, kind: type[Any]) -> Any:
    pool = _AsyncPool() if kind is _AsyncLetta else _SyncPool()
    return kind(**_options_of(given), http_client=pool)


def _twin(given: Any, kind: type[Any]) -> Any:
    """The client of `kind` derived from the user's `given` one.

    Built once per client and its settings: a client whose key, server or headers
    changed (a refreshed token) gets a new twin with them.
    """
    settings = _digest(SecretStr(repr(sorted(_options_of(given).items(), key=str))))
    with _TWIN_GUARD:
        try:
            known = TWINS.get(given)
        except TypeError:  # a client that cannot be weakly referenced or hashed
            return _derived(given, kind)
        if known is not None and known[0] == settings:
            return known[1]
        twin = _derived(given, kind)
        TWINS[given] = (settings, twin)
        return twin


def shared_clients(
    endpoint: Endpoint,
    *,
    timeout: float | None,
    max_retries: int,
    client: Letta | None = None,
    async_client: AsyncLetta | None = None,
) -> tuple[Letta, AsyncLetta]:
    """The sync and async letta-clients for these settings.

    Args:
        endpoint: the server and its credentials.
        timeout: seconds per request (`None`: letta-client's default).
        max_retries: retries of a failed request (sends and creates never retry).
        client: the user's sync client, used as given.
        async_client: the user's async client, used as given.

    Returns:
        The given clients; the missing twin of a given one derived from it; with neither
        given, the pool's pair for these settings.

    """
    if client is not None and async_client is not None:
        return client, async_client
    if client is not None:
        return client, _twin(client, _AsyncLetta)
    if async_client is not None:
        return _twin(async_client, _Letta), async_client
    key = (
        endpoint.url,
        _digest(endpoint.api_key),
        _digest(endpoint.basic_auth),
        timeout,
        max_retries,
    )
    options = _options(endpoint, timeout, max_retries)
    pair: tuple[Letta, AsyncLetta] = CLIENTS.obtain(
        key,
        lambda: (
            _Letta(**options, http_client=_SyncPool()),
            _AsyncLetta(**options, http_client=_AsyncPool()),
        ),
    )
    return pair


def for_running_loop(client: AsyncLetta) -> AsyncLetta:
    """The copy of `client` for the running event loop, if this package built `client`.

    The first loop gets `client` itself, each other one a copy with its own connections
    (shared by every object that uses `client` in that loop), even once the first loop
    is gone. A user's client, and any
    client outside a running loop, is returned as it is.
    """
    if not isinstance(client, _AsyncLetta):
        return client
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return client
    with client.loop_guard:
        if client.home_loop is None:
            client.home_loop = weakref.ref(loop)
        if client.home_loop() is loop:
            return client
        copy = client.loop_copies.get(loop)
        if copy is None:
            _let_closed_loops_go(client.loop_copies)
            copy = client.copy(http_client=_AsyncPool())
            client.loop_copies[loop] = copy
        return copy


def _let_closed_loops_go(copies: weakref.WeakKeyDictionary[Any, AsyncLetta]) -> None:
    """Drop the copies whose event loop was closed (each `asyncio.run()` closes its own).

    A copy's open connections hold its loop, so the weak key alone never lets a closed
    loop, its copy and their sockets go: a process that calls `asyncio.run()` per request
    would keep every one of them.
    """
    for loop in [loop for loop in copies if loop.is_closed()]:
        del copies[loop]
