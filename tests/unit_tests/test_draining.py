"""A finished stream returns at `[DONE]`; the rest of its body is read off the turn's path."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from letta_client import AsyncLetta, Letta

from langchain_letta import draining
from langchain_letta.draining import adrain_later, drain_later
from langchain_letta.events import aiter_events, iter_events

CONVERSATION = "conv-00000000-0000-4000-8000-000000000000"
EVENTS = [
    b'data: {"message_type": "assistant_message", "id": "message-1", "content": "hi"}\n\n',
    b'data: {"message_type": "stop_reason", "stop_reason": "end_turn"}\n\n',
    b"data: [DONE]\n\n",
]
WAIT = 10.0  # seconds a test waits for the drainer before it fails


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An event-stream body whose end the server holds back until `release` is set."""

    def __init__(self, rest: Iterator[bytes] | None = None) -> None:
        self.release = threading.Event()
        self.reading_rest = threading.Event()
        self.rest = rest if rest is not None else iter([b"\n"])
        self.rest_read_by: threading.Thread | None = None
        self.closed = threading.Event()

    def _rest(self) -> Iterator[bytes]:
        self.reading_rest.set()
        self.release.wait(WAIT)
        yield from self.rest
        self.rest_read_by = threading.current_thread()

    def __iter__(self) -> Iterator[bytes]:
        yield from EVENTS
        yield from self._rest()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in EVENTS:
            yield chunk
        self.reading_rest.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        for chunk in self.rest:
            yield chunk
        self.rest_read_by = threading.current_thread()

    def close(self) -> None:
        self.closed.set()

    async def aclose(self) -> None:
        self.closed.set()


def _answering(body: Body) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return httpx.MockTransport(answer)


def sent(body: Body) -> Any:
    """The streaming response of a send whose body is `body`."""
    client = Letta(
        base_url="http://letta.invalid", http_client=httpx.Client(transport=_answering(body))
    )
    request = client.conversations.messages.with_streaming_response.create(
        CONVERSATION, messages=[{"role": "user", "content": "x"}]
    )
    return request.__enter__()


async def asent(body: Body) -> Any:
    """Async twin of `sent`."""
    client = AsyncLetta(
        base_url="http://letta.invalid", http_client=httpx.AsyncClient(transport=_answering(body))
    )
    request = client.conversations.messages.with_streaming_response.create(
        CONVERSATION, messages=[{"role": "user", "content": "x"}]
    )
    return await request.__aenter__()


def test_a_turn_returns_at_done_and_the_rest_is_read_to_its_end_on_another_thread() -> None:
    body = Body()
    response = sent(body)
    lines = response.iter_lines()

    events = list(iter_events(response, lines))  # the server still holds the body's end
    drain_later(response, lines)

    assert [event.message_type for event in events] == ["assistant_message", "stop_reason"]
    assert body.reading_rest.wait(WAIT)
    body.release.set()
    assert body.closed.wait(WAIT)
    assert body.rest_read_by not in (None, threading.current_thread())


def test_a_body_that_never_ends_is_closed_after_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"\n"

    monkeypatch.setattr(draining, "BUDGET", 0.05)
    body = Body(endless())
    body.release.set()
    response = sent(body)
    lines = response.iter_lines()
    list(iter_events(response, lines))

    drain_later(response, lines)

    assert body.closed.wait(WAIT)


def test_a_drain_that_fails_closes_the_response_and_says_why_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> Iterator[bytes]:
        raise httpx.ReadError("connection reset")
        yield b""

    body = Body(broken())
    body.release.set()
    response = sent(body)
    lines = response.iter_lines()
    list(iter_events(response, lines))

    with caplog.at_level(logging.DEBUG, logger="langchain_letta.draining"):
        drain_later(response, lines)
        assert body.closed.wait(WAIT)

    assert "ReadError: connection reset" in caplog.text


def test_responses_beyond_those_that_may_wait_are_closed_at_once() -> None:
    drainer = draining._Drainer(waiting=1)
    bodies = [Body() for _ in range(3)]
    responses = [sent(body) for body in bodies]
    lines = [response.iter_lines() for response in responses]
    for response, its_lines in zip(responses, lines, strict=True):
        list(iter_events(response, its_lines))

    drainer.hand_over(responses[0], lines[0])
    assert bodies[0].reading_rest.wait(WAIT)  # the thread is busy with it
    drainer.hand_over(responses[1], lines[1])  # waits in the queue
    drainer.hand_over(responses[2], lines[2])  # the queue is full

    assert bodies[2].closed.is_set()
    assert not bodies[1].closed.is_set()
    for body in bodies:
        body.release.set()
    assert bodies[1].closed.wait(WAIT)


def test_an_async_turn_returns_at_done_and_a_task_reads_the_rest() -> None:
    body = Body()

    async def turn() -> list[str]:
        response = await asent(body)
        lines = response.iter_lines()
        events = [event.message_type async for event in aiter_events(response, lines)]
        await adrain_later(response, lines)
        assert not body.closed.is_set()
        body.release.set()
        while not body.closed.is_set():
            await asyncio.sleep(0.01)
        return events

    assert asyncio.run(turn()) == ["assistant_message", "stop_reason"]
    assert body.rest_read_by is threading.current_thread()


def test_a_loop_that_ends_while_a_drain_waits_closes_its_response_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body()  # never released

    async def turn() -> None:
        response = await asent(body)
        lines = response.iter_lines()
        [event async for event in aiter_events(response, lines)]
        await adrain_later(response, lines)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        asyncio.run(turn())
        gc.collect()

    assert body.closed.is_set()
    assert "destroyed" not in caplog.text


def test_a_drain_on_a_loop_closed_without_cleanup_is_let_go_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = Body(), Body()

    async def turn(body: Body) -> None:
        response = await asent(body)
        lines = response.iter_lines()
        [event async for event in aiter_events(response, lines)]
        await adrain_later(response, lines)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(turn(first))
        loop.close()  # its drain task still waits: it never runs again
        second.release.set()
        asyncio.run(turn(second))
        del loop
        gc.collect()

    assert not any(task.get_loop().is_closed() for task in draining._TASKS)
    assert "destroyed" not in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_drainer_of_its_own() -> None:
    parents = draining._DRAINER
    child = os.fork()
    if child == 0:  # the child must not read the sockets of responses its parent handed over
        os._exit(0 if draining._DRAINER is not parents else 1)

    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert draining._DRAINER is parents
