"""A turn is stored exactly once, whatever wraps the call, and no turn leaves a session stuck.

Live against the real local server. Each test asserts what the server holds afterwards.
One test per item of issue 12 (its number in the test's docstring).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import struct
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta
from pydantic import BaseModel, ValidationError

from langchain_letta import (
    ChatLetta,
    LettaAPIError,
    LettaChatMessageHistory,
    LettaConnectionError,
    LettaConversationBusyError,
    LettaInputError,
    LettaNotFoundError,
    LettaRunError,
    LettaTimeoutError,
    state,
)
from langchain_letta.errors import LettaIncompleteStreamError, LettaStructuredOutputError
from tests.fault_proxy import FaultProxy, Mode, http_200

pytestmark = pytest.mark.live


def user_turns(letta: Letta, conversation_id: str) -> list[str]:
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [
        item.content if isinstance(item.content, str) else item.content[0].text
        for item in items
        if item.message_type == "user_message"
    ]


def conversation_of(session_id: str, agent_id: str, base_url: str) -> str:
    found = LettaChatMessageHistory(
        session_id=session_id, agent_id=agent_id, base_url=base_url
    ).conversation_id
    assert found is not None
    return found


def until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    """Wait for ``condition``, failing the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.fixture
def proxy(base_url: str) -> FaultProxy:
    fault_proxy = FaultProxy(urlparse(base_url).port or 80)
    yield fault_proxy
    fault_proxy.close()


# ---------------------------------------------------------------------------- 1. retries


# The proxy stalls the send's stream after its first event (the run's id) until the test
# releases it, so the timeout fires on the send however slow the machine is; the timeout
# is generous for every other request.
HASTY = 3.0


def test_with_retry_after_a_timeout_stores_the_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """1: a stream that outlives ``timeout`` under ``with_retry``: stored once, reply returned."""
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "retry"}}
    model.invoke("warm up", config=config)
    proxy.mode, proxy.budget = "stall_sends", 1

    reply = model.with_retry(stop_after_attempt=3).invoke("patience", config=config)

    assert proxy.held == 1
    assert reply.text == "Echo: patience"
    assert str(reply.id).startswith("message-")
    assert user_turns(letta, conversation_of("retry", agent_id, proxy.base_url)) == [
        "warm up",
        "patience",
    ]


def test_with_fallbacks_to_another_model_stores_the_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """1: the fallback ``ChatLetta`` attaches to the first one's run instead of re-sending."""
    hasty = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    patient = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    config = {"configurable": {"session_id": "fallback"}}
    proxy.mode, proxy.budget = "stall_sends", 1

    reply = hasty.with_fallbacks([patient]).invoke("fall back", config=config)

    assert proxy.held == 1
    assert reply.text == "Echo: fall back"
    assert user_turns(letta, conversation_of("fallback", agent_id, proxy.base_url)) == ["fall back"]


def test_a_manual_retry_after_a_timeout_attaches_and_the_error_says_stored(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """1: ``LettaTimeoutError`` carries ``turn_stored``; calling again returns the reply."""
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "manual"}}
    proxy.mode, proxy.budget = "stall_sends", 1

    with pytest.raises(LettaTimeoutError) as raised:
        model.invoke("once", config=config)
    assert raised.value.turn_stored is True
    reply = model.invoke("once", config=config)
    patient = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    again = patient.invoke("once", config=config)  # a new call: a new turn

    assert reply.text == again.text == "Echo: once"
    assert reply.id != again.id
    assert user_turns(letta, conversation_of("manual", agent_id, proxy.base_url)) == [
        "once",
        "once",
    ]


async def test_async_retry_after_a_timeout_stores_the_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """1, async."""
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "aretry"}}
    proxy.mode, proxy.budget = "stall_sends", 1

    reply = await model.with_retry(stop_after_attempt=3).ainvoke("later", config=config)

    assert proxy.held == 1
    assert reply.text == "Echo: later"
    assert user_turns(letta, conversation_of("aretry", agent_id, proxy.base_url)) == ["later"]


# ---------------------------------------------------------------------------- 2. background


def test_background_turns_with_the_same_text_are_each_stored(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """2: the same text again, after a restart, and 5 at once: every call is a new turn."""
    config = {"configurable": {"session_id": "bg-same"}}
    ChatLetta(agent_id=agent_id, base_url=base_url, background=True).invoke("hi", config=config)
    state.reset()  # as after a restart
    restarted = ChatLetta(agent_id=agent_id, base_url=base_url, background=True)
    restarted.invoke("hi", config=config)

    with ThreadPoolExecutor(max_workers=5) as pool:
        replies = list(pool.map(lambda _: restarted.invoke("same", config=config).text, range(5)))

    assert replies == ["Echo: same"] * 5
    assert user_turns(letta, conversation_of("bg-same", agent_id, base_url)) == [
        "hi",
        "hi",
        *["same"] * 5,
    ]


def test_background_resend_after_a_failed_run_runs_again(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """2: resending a failed turn's text runs it again instead of replaying the failure."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, background=True)
    config = {"configurable": {"session_id": "bg-fail"}}
    with pytest.raises((LettaRunError, LettaAPIError)):
        model.invoke("[error] boom", config=config)

    conversation = conversation_of("bg-fail", agent_id, base_url)
    assert user_turns(letta, conversation) == []
    assert model.invoke("fine now", config=config).text == "Echo: fine now"


# ---------------------------------------------------------------------------- 3. no assistant text


def test_a_turn_that_ends_on_a_tool_step_keeps_the_session_usable(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """3: ``max_steps=1`` on a tool turn under RunnableWithMessageHistory, then more turns."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    def history(session_id: str) -> LettaChatMessageHistory:
        return LettaChatMessageHistory(session_id=session_id, agent_id=agent_id, base_url=base_url)

    short_chain = RunnableWithMessageHistory(model.bind(max_steps=1), history)
    chain = RunnableWithMessageHistory(model, history)
    config = {"configurable": {"session_id": "steps"}}

    cut_short = short_chain.invoke(
        [HumanMessage('[tool:conversation_search {"query": "x"}] look')], config=config
    )
    after = chain.invoke([HumanMessage("and now?")], config=config)

    assert cut_short.response_metadata["stop_reason"] == "max_steps"
    assert str(cut_short.id).startswith("message-")
    assert after.text == "Echo: and now?"
    assert user_turns(letta, conversation_of("steps", agent_id, base_url)) == [
        '[tool:conversation_search {"query": "x"}] look',
        "and now?",
    ]


# ---------------------------------------------------------------------------- 4. structured output


class Joke(BaseModel):
    setup: str
    punchline: str


def test_structured_output_on_a_session_leaves_it_free(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """4: the structured call is answered in its turn; the next turn runs."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "structured"}}

    joke = model.with_structured_output(Joke).invoke("[tool] Tell me a joke.", config=config)
    raw = model.with_structured_output(Joke, include_raw=True).invoke(
        "[tool] One more.", config=config
    )
    after = model.invoke("thanks", config=config)

    assert isinstance(joke, Joke)
    assert isinstance(raw["parsed"], Joke)
    assert raw["parsing_error"] is None
    assert after.text == "Echo: thanks"
    assert user_turns(letta, conversation_of("structured", agent_id, base_url)) == [
        "[tool] Tell me a joke.",
        "[tool] One more.",
        "thanks",
    ]


def test_structured_output_answered_in_text_is_a_typed_error(base_url: str, agent_id: str) -> None:
    """4: no silent ``None`` when the agent answers in text."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "structured-text"}}

    with pytest.raises(LettaStructuredOutputError):
        model.with_structured_output(Joke).invoke("just chat", config=config)
    raw = model.with_structured_output(Joke, include_raw=True).invoke("chat again", config=config)

    assert raw["parsed"] is None
    assert isinstance(raw["parsing_error"], LettaStructuredOutputError)


# ---------------------------------------------------------------------------- 5. dropped streams


def test_cut_foreground_streams_return_the_stored_reply(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """5: every cut stream still returns the reply Letta stored, stored once."""
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    config = {"configurable": {"session_id": "fg-cut"}}

    replies = [model.invoke(f"[long:4] cut {i}", config=config) for i in range(5)]
    streamed = "".join(chunk.text for chunk in model.stream("[long:3] streamed", config=config))

    assert proxy.cuts >= 6
    assert [reply.text for reply in replies] == ["word1 word2 word3 word4"] * 5
    assert all(str(reply.id).startswith("message-") for reply in replies)
    assert all(reply.usage_metadata and reply.usage_metadata["total_tokens"] for reply in replies)
    assert all(reply.response_metadata["stop_reason"] == "end_turn" for reply in replies)
    assert streamed == "word1 word2 word3"
    proxy.mode = "pass"
    assert user_turns(letta, conversation_of("fg-cut", agent_id, proxy.base_url)) == [
        *[f"[long:4] cut {i}" for i in range(5)],
        "[long:3] streamed",
    ]


async def test_async_cut_foreground_stream_returns_the_stored_reply(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """5, async."""
    proxy.mode = "cut_streams"
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, stream_tokens=True)
    config = {"configurable": {"session_id": "afg-cut"}}

    chunks = [chunk async for chunk in model.astream("[long:5] go", config=config)]

    assert "".join(chunk.text for chunk in chunks) == "word1 word2 word3 word4 word5"
    proxy.mode = "pass"
    assert user_turns(letta, conversation_of("afg-cut", agent_id, proxy.base_url)) == [
        "[long:5] go"
    ]


# ---------------------------------------------------------------------------- 6. garbage answers


@pytest.mark.parametrize(
    "answer",
    [
        http_200(b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        http_200(b'data: {"message_type": "assistant_mess'),
        http_200(b""),
        http_200(b"data: [1, 2]\n\n"),
    ],
    ids=["html", "truncated-json", "empty", "not-an-object"],
)
def test_a_send_answered_with_garbage_is_a_typed_error_and_stores_nothing(
    proxy: FaultProxy, agent_id: str, letta: Letta, answer: bytes
) -> None:
    """6: no ``stop_reason`` means an error with ``turn_stored``, never a quiet reply."""
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    config = {"configurable": {"session_id": "garbage"}}
    model.invoke("warm up", config=config)
    proxy.mode, proxy.budget, proxy.answer = "answer_sends", 1, answer

    with pytest.raises(LettaConnectionError) as raised:
        model.invoke("lost?", config=config, sync_memory="never")

    assert isinstance(raised.value, LettaIncompleteStreamError)
    assert raised.value.turn_stored is False
    proxy.mode = "pass"
    assert model.invoke("next", config=config).text == "Echo: next"
    assert user_turns(letta, conversation_of("garbage", agent_id, proxy.base_url)) == [
        "warm up",
        "next",
    ]


# ---------------------------------------------------------------------------- 7. abandoned streams


def test_breaking_out_of_a_stream_cancels_its_run_and_frees_the_session(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """7: the next turn runs at once (a short busy_timeout would fail it otherwise)."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=20)
    config = {"configurable": {"session_id": "abandon"}}
    model.invoke("warm up", config=config)
    for _chunk in model.stream("[slow:6] [long:30] go on", config=config):
        break

    reply = model.invoke("next", config=config)

    assert reply.text == "Echo: next"
    conversation = conversation_of("abandon", agent_id, base_url)
    runs = list(letta.runs.list(conversation_id=conversation, limit=10))
    assert "cancelled" in {run.status for run in runs}


def test_an_unclosed_referenced_stream_does_not_deadlock_the_next_turn(
    base_url: str, agent_id: str
) -> None:
    """7: the same thread starting a new turn abandons its suspended stream."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=20)
    config = {"configurable": {"session_id": "referenced"}}
    model.invoke("warm up", config=config)
    stream = model.stream("[slow:6] [long:30] go on", config=config)
    next(stream)

    reply = model.invoke("next", config=config)

    assert reply.text == "Echo: next"
    del stream
    gc.collect()


async def test_cancelling_an_astream_task_frees_the_session(base_url: str, agent_id: str) -> None:
    """7: a cancelled task cancels the server run; the next turn runs."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=20)
    config = {"configurable": {"session_id": "cancel"}}
    await model.ainvoke("warm up", config=config)
    started = asyncio.Event()

    async def consume() -> None:
        async for _chunk in model.astream("[slow:6] [long:30] go on", config=config):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert (await model.ainvoke("next", config=config)).text == "Echo: next"


# ---------------------------------------------------------------------------- 8. event loops


def test_one_model_survives_two_event_loops_after_an_http_error(
    base_url: str, agent_id: str
) -> None:
    """8: an async HTTP error in one ``asyncio.run`` does not break the next one."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "loops"}}
    asyncio.run(model.ainvoke("one", config=config))
    foreign = {"configurable": {"conversation_id": "conv-00000000-0000-4000-8000-000000000000"}}
    with pytest.raises(LettaNotFoundError):
        asyncio.run(model.ainvoke("nowhere", config=foreign))

    assert asyncio.run(model.ainvoke("two", config=config)).text == "Echo: two"


# ---------------------------------------------------------------------------- 9. one routing path


def test_every_entry_point_routes_by_session_and_keeps_params_clean(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """9: generate, stream_events(v3) and invoke all reach the session's conversation."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": "routes"}}
    first = model.invoke("by invoke", config=config)
    conversation = first.response_metadata["conversation_id"]

    generated = model.generate([[HumanMessage("by generate")]], session_id="routes")
    events = model.stream_events("by v3", config=config, version="v3")
    v3_text = "".join(events.text)
    params = model._get_invocation_params(letta_route=("session_id", "routes"), session_id="x")

    assert generated.generations[0][0].message.response_metadata["conversation_id"] == conversation
    assert v3_text == "Echo: by v3"
    assert not {"letta_route", "session_id", "letta_history"} & set(params)
    assert user_turns(letta, conversation) == ["by invoke", "by generate", "by v3"]


async def test_agenerate_routes_by_session(base_url: str, agent_id: str, letta: Letta) -> None:
    """9, async."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    first = await model.ainvoke("one", config={"configurable": {"session_id": "agen"}})

    await model.agenerate([[HumanMessage("two")]], session_id="agen")

    assert user_turns(letta, first.response_metadata["conversation_id"]) == ["one", "two"]


# ---------------------------------------------------------------------------- 10. refusals


def test_inputs_that_cannot_be_a_turn_are_refused_before_sending(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    """10: ``max_steps < 1``, system-only and AI-only input raise; nothing is created."""
    before = len(list(letta.conversations.list(agent_id=agent_id, limit=1000)))
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    with pytest.raises(ValidationError, match="max_steps"):
        ChatLetta(agent_id=agent_id, base_url=base_url, max_steps=0)
    with pytest.raises(LettaInputError):
        model.invoke("hi", max_steps=-1)
    with pytest.raises(LettaInputError):
        model.invoke([SystemMessage("only rules")])
    with pytest.raises(LettaInputError):
        model.invoke([AIMessage("only me")])

    assert len(list(letta.conversations.list(agent_id=agent_id, limit=1000))) == before


def test_streaming_false_is_honoured_as_langchain_defines_it(base_url: str, agent_id: str) -> None:
    """10: explicit ``streaming=False``: ``stream()`` yields the whole reply as one chunk."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, streaming=False, stream_tokens=True)

    chunks = list(model.stream("[long:4] go"))

    assert len(chunks) == 1
    assert chunks[0].text == "word1 word2 word3 word4"


# ---------------------------------------------------------------------------- 11. sizes


def _png(width: int, height: int) -> bytes:
    row = b"\x00" + (bytes(range(256)) * (width * 3 // 256 + 1))[: width * 3]
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )


def test_large_images_and_non_ascii_text_are_not_refused_by_the_size_check(
    base_url: str, agent_id: str
) -> None:
    """11: a ~600 KB image and 21,000 CJK characters fit; ``get_num_tokens`` needs no extra."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    image = base64.b64encode(_png(420, 420)).decode()
    assert len(image) > 600_000
    config = {"configurable": {"session_id": "sizes"}}

    pictured = model.invoke(
        [
            HumanMessage(
                [
                    {"type": "text", "text": "look"},
                    {"type": "image", "base64": image, "mime_type": "image/png"},
                ]
            )
        ],
        config=config,
    )
    cjk = model.invoke("漢" * 21_000, config=config)

    assert pictured.text
    assert cjk.text
    assert model.get_num_tokens("hello world") in range(2, 5)
    assert model.get_num_tokens("漢" * 100) == 100
    assert model.get_num_tokens_from_messages([HumanMessage("hello world")]) > 0


# ---------------------------------------------------------------------------- 12. client retries


def test_a_conversation_create_that_times_out_is_not_reposted(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """12: letta-client's retries never re-POST a create (the server made one conversation).

    The proxy holds the create's answer until the test releases it, so the create times
    out however slow the machine is; the timeout is generous for every other request.
    """
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY, max_retries=2)
    model.invoke("warm up")  # the agent is read, so what follows is the create
    before = {conv.id for conv in letta.conversations.list(agent_id=agent_id, limit=1000)}
    proxy.mode, proxy.budget = "hold_creates", 3

    with pytest.raises((LettaTimeoutError, LettaConnectionError)):
        model.invoke("new session", config={"configurable": {"session_id": "create-once"}})

    proxy.mode = "pass"
    proxy.release.set()
    assert proxy.held == 1  # one create reached the server: none was re-posted

    def new() -> list[str]:
        listed = letta.conversations.list(agent_id=agent_id, limit=1000)
        return [conv.id for conv in listed if conv.id not in before]

    until(lambda: bool(new()))
    assert len(new()) == 1


# ---------------------------------------------------------------------------- found by attack
# Each test below reproduces a break found by attacking the rules above (fixed since).


def test_a_send_still_on_its_way_at_the_timeout_is_not_reported_as_unstored(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    """The send reaches the server after the client gave up: ``turn_stored`` is not False.

    The proxy holds the send until the client has raised, then lets it through.
    """
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "held-send"}}
    model.invoke("warm up", config=config)
    conversation = conversation_of("held-send", agent_id, base_url=proxy.base_url)
    proxy.mode, proxy.budget = "hold_sends", 1

    with pytest.raises(LettaTimeoutError) as raised:
        model.invoke("pay order 7", config=config)

    assert raised.value.turn_stored is None  # could not be confirmed either way
    proxy.mode = "pass"
    proxy.release.set()
    until(lambda: "pay order 7" in user_turns(letta, conversation))
    reply = ChatLetta(agent_id=agent_id, base_url=proxy.base_url).invoke(
        "pay order 7", config=config
    )
    assert reply.text == "Echo: pay order 7"
    assert user_turns(letta, conversation) == ["warm up", "pay order 7"]


@pytest.mark.parametrize("calling", ["sync", "async"])
def test_a_retry_that_sent_before_its_late_turn_arrived_attaches_to_it(
    proxy: FaultProxy, agent_id: str, letta: Letta, calling: str
) -> None:
    """The retry found nothing (the first send was still on its way) and sent; the first
    send reached the server first, so the retry met its run (409): it attaches to it."""
    hasty = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "late-send"}}
    hasty.invoke("warm up", config=config)
    conversation = conversation_of("late-send", agent_id, base_url=proxy.base_url)
    proxy.mode, proxy.budget = "hold_sends", 2
    with pytest.raises(LettaTimeoutError):
        hasty.invoke("[slow:5] pay order 8", config=config)

    patient = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    with ThreadPoolExecutor(max_workers=1) as pool:
        retry = (
            pool.submit(patient.invoke, "[slow:5] pay order 8", config)
            if calling == "sync"
            else pool.submit(asyncio.run, patient.ainvoke("[slow:5] pay order 8", config))
        )
        until(lambda: proxy.held == 2)  # the retry looked, found nothing, and sent
        proxy.gates[0].set()  # the first send reaches the server first
        until(lambda: bool(list(letta.runs.list(conversation_id=conversation, active=True))))
        proxy.gates[1].set()  # then the retry's, well inside the 5 s run: a 409
        reply = retry.result()

    assert reply.text == "Echo: pay order 8"
    assert user_turns(letta, conversation) == ["warm up", "[slow:5] pay order 8"]


def test_a_structured_call_that_timed_out_does_not_leave_the_session_waiting(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    hasty = ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY)
    config = {"configurable": {"session_id": "structured-timeout"}}
    proxy.mode, proxy.budget = "stall_sends", 1
    with pytest.raises(LettaTimeoutError):
        hasty.with_structured_output(Joke).invoke("[tool] a joke", config=config)

    reply = ChatLetta(agent_id=agent_id, base_url=proxy.base_url).invoke(
        "something else", config=config
    )

    assert proxy.held == 1
    assert reply.text == "Echo: something else"


def test_an_astream_closed_early_frees_the_session_for_the_next_event_loop(
    base_url: str, agent_id: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=10)
    config = {"configurable": {"session_id": "aclose"}}

    async def first_chunk_then_close() -> None:
        stream = model.astream("[long:30] go", config=config)
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(first_chunk_then_close())

    assert asyncio.run(model.ainvoke("after", config=config)).text == "Echo: after"


async def test_an_unclosed_astream_does_not_block_ainvoke_in_the_same_task(
    base_url: str, agent_id: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=10)
    config = {"configurable": {"session_id": "unclosed-async"}}
    stream = model.astream("[long:30] peek", config=config)
    async for chunk in stream:
        if chunk.text:
            break  # left unclosed, still referenced

    assert (await model.ainvoke("next turn", config=config)).text == "Echo: next turn"
    del stream


def test_a_stream_kept_by_a_finished_thread_does_not_block_the_session(
    base_url: str, agent_id: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True, busy_timeout=10)
    config = {"configurable": {"session_id": "dead-thread"}}
    kept = []

    def peek() -> None:
        stream = model.stream("[long:30] peek", config=config)
        next(stream)
        kept.append(stream)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(peek).result()

    assert model.invoke("next", config=config).text == "Echo: next"


def test_closing_a_stream_never_cancels_another_clients_run(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True)
    config = {"configurable": {"session_id": "other-run"}}
    model.invoke("warm", config=config)
    conversation = conversation_of("other-run", agent_id, base_url)
    stream = model.stream("[long:3] mine", config=config)
    next(stream)
    until(lambda: not list(letta.runs.list(conversation_id=conversation, active=True)))

    with ThreadPoolExecutor(max_workers=1) as pool:  # another client's turn
        other = pool.submit(
            lambda: [
                event.stop_reason
                for event in letta.conversations.messages.create(
                    conversation, messages=[{"role": "user", "content": "[slow:3] theirs"}]
                )
                if event.message_type == "stop_reason"
            ]
        )
        until(lambda: bool(list(letta.runs.list(conversation_id=conversation, active=True))))
        stream.close()
        assert other.result() == ["end_turn"]


def test_a_keyed_retry_finds_its_turn_behind_later_turns(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    keyed = {"configurable": {"session_id": "keyed", "idempotency_key": "order-7"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    first = model.invoke("charge order 7", config=keyed)
    for i in range(5):
        model.invoke(f"other {i}", config={"configurable": {"session_id": "keyed"}})

    late = ChatLetta(agent_id=agent_id, base_url=base_url).invoke("charge order 7", config=keyed)

    assert late.id == first.id
    assert (
        user_turns(letta, conversation_of("keyed", agent_id, base_url)).count("charge order 7") == 1
    )


def test_a_retry_that_gave_up_waiting_keeps_the_turn_in_doubt(
    proxy: FaultProxy, agent_id: str, letta: Letta
) -> None:
    config = {"configurable": {"session_id": "gave-up"}}
    ChatLetta(agent_id=agent_id, base_url=proxy.base_url).invoke("warm", config=config)
    proxy.mode, proxy.budget = "stall_sends", 1
    with pytest.raises(LettaTimeoutError):
        ChatLetta(agent_id=agent_id, base_url=proxy.base_url, timeout=HASTY).invoke(
            "pay", config=config
        )
    sent = proxy.sends
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(
            ChatLetta(agent_id=agent_id, base_url=proxy.base_url).invoke, "[slow:6] other", config
        )
        until(lambda: proxy.sends > sent)  # it sends under the conversation's lock
        with pytest.raises(LettaConversationBusyError):
            ChatLetta(agent_id=agent_id, base_url=proxy.base_url, busy_timeout=1).invoke(
                "pay", config=config
            )
        other.result()

    ChatLetta(agent_id=agent_id, base_url=proxy.base_url).invoke("pay", config=config)

    assert user_turns(letta, conversation_of("gave-up", agent_id, proxy.base_url)) == [
        "warm",
        "pay",
        "[slow:6] other",
    ]


@pytest.mark.parametrize("mode", ["hold_sends", "stall_sends"], ids=["unanswered", "started"])
async def test_a_retry_after_the_app_cancelled_the_call_stores_the_turn_once(
    proxy: FaultProxy, agent_id: str, letta: Letta, mode: Mode
) -> None:
    """The app cancels the call while its send is unanswered, or once its run started."""
    model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
    config = {"configurable": {"session_id": "wait-for"}}
    await model.ainvoke("warm up", config=config)
    conversation = conversation_of("wait-for", agent_id, proxy.base_url)
    proxy.mode, proxy.budget = mode, 1
    call = asyncio.create_task(model.ainvoke("[slow:2] book", config=config))
    await asyncio.to_thread(until, lambda: proxy.held == 1)

    call.cancel()  # as asyncio.wait_for does at its limit
    with pytest.raises(asyncio.CancelledError):
        await call
    proxy.mode = "pass"
    proxy.release.set()
    await asyncio.to_thread(until, lambda: "[slow:2] book" in user_turns(letta, conversation))
    reply = await model.ainvoke("[slow:2] book", config=config)

    assert reply.text == "Echo: book"
    assert user_turns(letta, conversation) == ["warm up", "[slow:2] book"]
