"""A session's turns reuse their client pool's connections (counted by a loopback proxy)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables.history import RunnableWithMessageHistory

from benchmarks.bench_connections import one_connection_clients, proxy_to
from langchain_letta import ChatLetta, LettaChatMessageHistory
from tests.integration_tests.test_runnable_with_history import chain

pytestmark = pytest.mark.live

TURNS = 8
IN_FLIGHT = 3
"""Connections a chain turn may have open at once: the history's read, the memory-block
read alongside it (`langchain_letta.prefetch`), and the last turn's send, whose body
Letta is still ending. One connection a turn would be `TURNS` or more."""
THREADS = 16
"""Users served at once: with the sends being drained, more connections in use than
letta-client's pool keeps alive (20)."""


def replies(agent_id: str, url: str, session_id: str) -> int:
    """The AI messages a fresh history object of the session reads now."""
    history = LettaChatMessageHistory(session_id=session_id, agent_id=agent_id, base_url=url)
    return sum(isinstance(message, AIMessage) for message in history.messages)


def test_chain_turns_on_one_session_reuse_their_connections(base_url: str, agent_id: str) -> None:
    config: Any = {"configurable": {"session_id": "pooled"}}
    with proxy_to(base_url) as proxy:
        runnable = chain(
            "direct", ChatLetta(agent_id=agent_id, base_url=proxy.url), agent_id, proxy.url
        )
        for turn in range(TURNS):
            runnable.invoke(f"turn {turn}", config)
            assert replies(agent_id, proxy.url, "pooled") == turn + 1  # read right after it
        opened = proxy.count

    assert opened <= IN_FLIGHT


def test_async_chain_turns_on_one_session_reuse_their_connections(
    base_url: str, agent_id: str
) -> None:
    config: Any = {"configurable": {"session_id": "pooled-async"}}

    async def turns(url: str) -> None:
        runnable = chain("direct", ChatLetta(agent_id=agent_id, base_url=url), agent_id, url)
        for turn in range(TURNS):
            await runnable.ainvoke(f"turn {turn}", config)

    with proxy_to(base_url) as proxy:
        asyncio.run(turns(proxy.url))
        opened = proxy.count
        assert replies(agent_id, proxy.url, "pooled-async") == TURNS

    assert opened <= IN_FLIGHT


def test_clients_of_one_connection_hold_a_session_to_one(base_url: str, agent_id: str) -> None:
    """The opt-in of the README: a pool that allows one connection keeps to it, and no
    request waits forever on the one a drain or the blocks read holds."""
    config: Any = {"configurable": {"session_id": "one-connection"}}

    async def async_turns(runnable: Any) -> None:
        for turn in range(TURNS // 2, TURNS):
            await runnable.ainvoke(f"turn {turn}", config)

    with proxy_to(base_url) as proxy:
        client, async_client = one_connection_clients(proxy.url)
        model = ChatLetta(agent_id=agent_id, client=client, async_client=async_client)
        runnable = RunnableWithMessageHistory(
            model,
            lambda sid: LettaChatMessageHistory(
                session_id=sid, agent_id=agent_id, client=client, async_client=async_client
            ),
        )
        for turn in range(TURNS // 2):
            runnable.invoke(f"turn {turn}", config)
        asyncio.run(async_turns(runnable))
        opened = proxy.count
        assert replies(agent_id, proxy.url, "one-connection") == TURNS

    assert opened <= 2  # one for the sync pool, one for the async pool


def test_threads_sharing_the_pooled_clients_keep_their_connections(
    base_url: str, agent_id: str
) -> None:
    """Users served at once through the clients the package pools, as a web app serves
    them: each call's connection goes back to the pool and stays there
    (`langchain_letta.clients.LIMITS`). At letta-client's own limits the pool keeps 20
    alive and closes idle ones past that, some already handed to another thread's
    request (its read then fails with EBADF)."""
    with proxy_to(base_url) as proxy:
        model = ChatLetta(agent_id=agent_id, base_url=proxy.url)

        def user(n: int) -> list[Any]:
            model.invoke(f"hi {n}", config={"configurable": {"session_id": f"user-{n}"}})
            history = LettaChatMessageHistory(
                session_id=f"user-{n}", agent_id=agent_id, base_url=proxy.url
            )
            return [message.content for message in history.messages][:1]

        with ThreadPoolExecutor(THREADS) as pool:
            first = list(pool.map(user, range(3 * THREADS)))
        opened = proxy.count

    assert first == [[f"hi {n}"] for n in range(3 * THREADS)]
    # a thread's request, its last send still being drained, one waiting for the drainer
    assert opened <= IN_FLIGHT * THREADS


def test_asyncio_run_per_request_keeps_no_loop_or_connection(base_url: str, agent_id: str) -> None:
    """A sync app that runs each request in its own ``asyncio.run()`` (as Flask's async
    views do) holds the same sockets and memory after 20 requests as after the first."""
    # Settings of their own, so the pooled clients are this test's alone.
    history = LettaChatMessageHistory(
        session_id="loop-per-request", agent_id=agent_id, base_url=base_url, timeout=97.0
    )
    model = ChatLetta(agent_id=agent_id, base_url=base_url, timeout=97.0)
    config: Any = {"configurable": {"session_id": "loop-per-request"}}

    async def request(turn: int) -> None:
        await model.ainvoke(f"request {turn}", config)
        await history.aget_messages()

    def sockets_and_closed_loops() -> tuple[int, int]:
        gc.collect()
        closed = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
        return len(os.listdir("/proc/self/fd")), sum(loop.is_closed() for loop in closed)

    asyncio.run(request(0))
    first = sockets_and_closed_loops()
    for turn in range(1, 21):
        asyncio.run(request(turn))
    fds, loops = sockets_and_closed_loops()

    assert fds - first[0] <= 2, f"{fds - first[0]} more file descriptors after 20 requests"
    assert loops - first[1] <= 1, f"{loops - first[1]} closed event loops kept"
    assert len(history.messages) == 2 * 21


def test_forked_workers_do_not_share_their_parents_connections(
    base_url: str, agent_id: str
) -> None:
    """Workers forked after a turn (gunicorn ``--preload``, Celery prefork) each read their
    own answers: none gets a sibling's through a socket inherited from the parent."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    model.invoke("the parent warms the pool", {"configurable": {"session_id": "fork-parent"}})
    assert replies(agent_id, base_url, "fork-parent") == 1  # a read, pooled too

    def work(child: int) -> int:
        session: Any = {"configurable": {"session_id": f"fork-child-{child}"}}
        for turn in range(4):
            model.invoke(f"child {child} turn {turn}", session)
            history = LettaChatMessageHistory(
                session_id=f"fork-child-{child}", agent_id=agent_id, base_url=base_url
            )
            said = [m.text for m in history.messages if m.type == "human"]
            if said != [f"child {child} turn {n}" for n in range(turn + 1)]:
                return 1
        return 0

    children = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports by its exit code
            code = 3
            try:
                code = work(child)
            finally:
                os._exit(code)
        children.append(pid)
    codes = {}
    deadline = time.monotonic() + 180
    while len(codes) < len(children) and time.monotonic() < deadline:
        for pid in set(children) - set(codes):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.2)
    for pid in set(children) - set(codes):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    assert [codes.get(pid, "hung") for pid in children] == [0, 0, 0]
