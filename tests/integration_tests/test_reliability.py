"""Reliability, live against the real local server through a fault-injecting proxy.

Each test asserts what the server holds afterwards, not only what the client saw.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import HumanMessage
from letta_client import Letta

from langchain_letta import (
    ChatLetta,
    LettaAPIError,
    LettaChatMessageHistory,
    LettaConnectionError,
    LettaConversationBusyError,
    LettaInputError,
    LettaInputTooLargeError,
    LettaNotFoundError,
    state,
)
from langchain_letta.errors import LettaConversationIdError
from tests.fault_proxy import FaultProxy
from tests.integration_tests.test_turns_exactly_once import until

pytestmark = pytest.mark.live


def held(letta: Letta, conversation_id: str) -> list[tuple[str, str]]:
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [
        (item.message_type, item.content if isinstance(item.content, str) else item.content[0].text)
        for item in items
        if item.message_type in {"user_message", "assistant_message"}
    ]


@pytest.fixture
def proxy(base_url: str) -> FaultProxy:
    fault_proxy = FaultProxy(urlparse(base_url).port or 80)
    yield fault_proxy
    fault_proxy.close()


def test_cut_streams_resume_and_store_each_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, background=True)
    config = {"configurable": {"session_id": "cut"}}

    replies = [model.invoke(f"turn {i}", config=config).text for i in range(20)]

    assert replies == [f"Echo: turn {i}" for i in range(20)]
    assert proxy.cuts >= 20
    conversation = LettaChatMessageHistory(
        session_id="cut", agent_id=agent_id, base_url=proxy.base_url
    ).conversation_id
    assert conversation is not None
    expected = []
    for i in range(20):
        expected += [("user_message", f"turn {i}"), ("assistant_message", f"Echo: turn {i}")]
    assert held(letta, conversation) == expected


async def test_async_cut_streams_resume_with_no_duplicate_chunk(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, background=True)
    config = {"configurable": {"session_id": "acut"}}

    chunks = [chunk async for chunk in model.astream("[long:5] go", config=config)]

    texts = [chunk.text for chunk in chunks if chunk.text]
    assert "".join(texts) == "word1 word2 word3 word4 word5"
    assert proxy.cuts >= 2
    conversation = chunks[-1].response_metadata["conversation_id"]
    assert held(letta, conversation) == [
        ("user_message", "[long:5] go"),
        ("assistant_message", "word1 word2 word3 word4 word5"),
    ]


def test_slow_network_delays_but_stores_each_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    proxy.mode, proxy.delay = "delay", 0.2
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, stream_tokens=True)
    config = {"configurable": {"session_id": "slow-net"}}

    replies = [model.invoke(f"d{i}", config=config).text for i in range(3)]

    assert replies == ["Echo: d0", "Echo: d1", "Echo: d2"]
    conversation = LettaChatMessageHistory(
        session_id="slow-net", agent_id=agent_id, base_url=proxy.base_url
    ).conversation_id
    assert conversation is not None
    assert [t for k, t in held(letta, conversation) if k == "user_message"] == ["d0", "d1", "d2"]


def test_cut_stream_in_foreground_returns_the_stored_reply_and_never_resends(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    config = {"configurable": {"session_id": "fg"}}

    reply = model.invoke("only once", config=config)

    proxy.mode = "pass"
    conversation = LettaChatMessageHistory(
        session_id="fg", agent_id=agent_id, base_url=proxy.base_url
    ).conversation_id
    assert conversation is not None
    assert proxy.cuts >= 1
    assert reply.text == "Echo: only once"
    assert held(letta, conversation) == [
        ("user_message", "only once"),
        ("assistant_message", "Echo: only once"),
    ]


def test_a_foreground_run_that_outlives_the_wait_reports_the_turn_stored(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, busy_timeout=0.5)
    config = {"configurable": {"session_id": "fg-long"}}

    with pytest.raises(LettaConnectionError) as raised:
        model.invoke("[slow:3] only once", config=config)

    assert raised.value.turn_stored is True
    assert "was not re-sent" in str(raised.value)
    proxy.mode = "pass"
    patient = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    reply = patient.invoke("[slow:3] only once", config=config)  # the same call again: attaches
    conversation = reply.response_metadata["conversation_id"]
    assert reply.text == "Echo: only once"
    assert [t for k, t in held(letta, conversation) if k == "user_message"] == [
        "[slow:3] only once"
    ]


def test_server_errors_on_send_are_not_retried(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, max_retries=3)
    config = {"configurable": {"session_id": "503"}}
    model.invoke("warm up", config=config)  # session resolved, model name read
    proxy.mode, proxy.budget = "fail_posts", 1

    with pytest.raises(LettaAPIError) as raised:
        model.invoke("refused", config=config, sync_memory="never")

    assert getattr(raised.value, "status_code", None) == 503
    proxy.mode = "pass"
    assert model.invoke("after", config=config).text == "Echo: after"
    conversation = LettaChatMessageHistory(
        session_id="503", agent_id=agent_id, base_url=proxy.base_url
    ).conversation_id
    assert conversation is not None
    assert [t for k, t in held(letta, conversation) if k == "user_message"] == ["warm up", "after"]


def test_concurrent_turns_on_one_session_are_serialised(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "crowd"}}
    model.invoke("first", config=config)

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda i: model.invoke(f"c{i}", config=config).text, range(10)))

    assert sorted(replies) == sorted(f"Echo: c{i}" for i in range(10))
    conversation = LettaChatMessageHistory(
        session_id="crowd", agent_id=agent_id, base_url=base_url
    ).conversation_id
    assert conversation is not None
    users = [t for k, t in held(letta, conversation) if k == "user_message"]
    assert sorted(users) == sorted(["first", *[f"c{i}" for i in range(10)]])


async def running(letta: Letta, conversation_id: str) -> None:
    """Wait until the server runs a turn of the conversation (polled, off the event loop)."""
    await asyncio.to_thread(
        until, lambda: bool(list(letta.runs.list(conversation_id=conversation_id, active=True)))
    )


async def test_concurrent_async_turns_across_processes_wait_for_busy(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    # Two models stand for two processes: no shared in-process lock, so the server's
    # 409 "busy" is what they meet, and it is waited out.
    config = {"configurable": {"session_id": "busy"}}
    first, second = (ChatLetta(agent_id=agent_id, base_url=base_url) for _ in range(2))
    hello = await first.ainvoke("hello", config=config)
    slow = asyncio.create_task(first.ainvoke("[slow:3] one", config=config))
    await running(letta, hello.response_metadata["conversation_id"])
    state.LOCKS.clear()  # as if the second model ran in another process
    other = await second.ainvoke("two", config=config)
    assert (await slow).text == "Echo: one"
    assert other.text == "Echo: two"


async def test_busy_conversation_is_waited_for_then_raised_with_its_run(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    config = {"configurable": {"session_id": "held"}}
    holder = ChatLetta(agent_id=agent_id, base_url=base_url)
    impatient = ChatLetta(agent_id=agent_id, base_url=base_url, busy_timeout=0.5)
    hello = await holder.ainvoke("hello", config=config)
    slow = asyncio.create_task(holder.ainvoke("[slow:4] hold it", config=config))
    await running(letta, hello.response_metadata["conversation_id"])
    state.LOCKS.clear()  # as if another process
    with pytest.raises(LettaConversationBusyError) as raised:
        await impatient.ainvoke("let me in", config=config, sync_memory="never")
    await slow
    assert raised.value.is_retryable
    assert (raised.value.run_id or "").startswith("run-")
    assert raised.value.run_id in str(raised.value)


def test_input_larger_than_the_context_window_is_refused(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "big"}}
    model.invoke("small", config=config)
    conversation = LettaChatMessageHistory(
        session_id="big", agent_id=agent_id, base_url=base_url
    ).conversation_id
    assert conversation is not None
    before = held(letta, conversation)

    with pytest.raises(LettaInputTooLargeError):
        model.invoke("x" * 4_000_000, config=config)

    assert held(letta, conversation) == before


def test_bad_inputs_raise_typed_errors_and_store_nothing(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    before = len(list(letta.conversations.list(agent_id=agent_id, limit=1000)))

    with pytest.raises(LettaInputError):
        model.invoke([])
    with pytest.raises(LettaInputError):
        model.invoke("   ")
    with pytest.raises(LettaInputError):
        model.invoke(
            [HumanMessage(content=[{"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}])]
        )
    with pytest.raises(LettaInputError):
        model.invoke("hi", config={"configurable": {"session_id": 42}})
    with pytest.raises(LettaConversationIdError):  # refused before anything is sent
        model.invoke("hi", config={"configurable": {"conversation_id": "conv-not-a-uuid"}})
    with pytest.raises(LettaNotFoundError):
        model.invoke(
            "hi",
            config={
                "configurable": {"conversation_id": "conv-00000000-0000-4000-8000-000000000000"}
            },
        )
    unknown = ChatLetta(agent_id="agent-00000000-0000-4000-8000-000000000000", base_url=base_url)
    with pytest.raises(LettaNotFoundError):
        unknown.invoke("hi")

    assert len(list(letta.conversations.list(agent_id=agent_id, limit=1000))) == before


def test_api_key_never_shows(
    base_url: str, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-let-test-SECRET-0123456789"
    caplog.set_level(logging.DEBUG)
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=secret)

    model.invoke("hi")
    artefacts = [repr(model), str(model), str(dumpd(model)), model.model_dump_json(), caplog.text]
    try:
        ChatLetta(
            agent_id="agent-00000000-0000-4000-8000-000000000000", base_url=base_url, api_key=secret
        ).invoke("x")
    except LettaNotFoundError as error:
        artefacts += [str(error), repr(error)]

    assert all(secret not in artefact for artefact in artefacts)
