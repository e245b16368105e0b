"""Plain reproductions of the bugs the state machine (``machine.UserPaths``) found.

Each is the shortest path to one broken promise, live against the real server. A test is
``xfail(strict=True)`` while its fix is pending: the day the fix lands the test passes, the
strict xfail fails the run, and the marker comes off (and the operation comes out of
``machine.KNOWN_BUGS``, so the state machine draws it again). Those without the marker
were fixed (issue 12) and stay as regression tests.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

import pytest
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import ChatLetta, LettaChatMessageHistory
from langchain_letta.errors import LettaRunError
from tests.fault_proxy import FaultProxy
from tests.stateful.machine import is_typed
from tests.stateful.oracle import stored_user_texts
from tests.stateful.processes import other_process

pytestmark = pytest.mark.live


def _history(agent_id: str, base_url: str, key: str) -> LettaChatMessageHistory:
    return LettaChatMessageHistory(session_id=key, agent_id=agent_id, base_url=base_url)


def _conversation(model: ChatLetta, key: str) -> str:
    return str(_history(model.agent_id, str(model.base_url), key).conversation_id)


def test_manual_retry_after_a_timeout_stores_the_turn_once(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "retry"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    model.invoke("first", config=config)
    try:
        ChatLetta(agent_id=agent_id, base_url=base_url, timeout=1.0).invoke(
            "[slow:2] once", config=config
        )
    except Exception:  # the timeout; the caller retries as LangChain's with_retry would
        reply = model.invoke("[slow:2] once", config=config)
        assert reply.text == "Echo: once"
    texts = stored_user_texts(letta, _conversation(model, "retry"))
    assert texts == ["first", "[slow:2] once"]


def test_cut_foreground_stream_returns_the_reply_the_server_stored(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    proxy = FaultProxy(urlparse(base_url).port or 80, mode="cut_streams")
    try:
        model = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
        reply = model.invoke("cut", config={"configurable": {"session_id": "cut"}})
    finally:
        proxy.close()
    assert reply.text == "Echo: cut"
    assert stored_user_texts(letta, _conversation(model, "cut")) == ["cut"]


def test_clear_in_another_process_reaches_a_running_history(agent_id: str, base_url: str) -> None:
    config = {"configurable": {"session_id": "cleared"}}
    ChatLetta(agent_id=agent_id, base_url=base_url).invoke("before", config=config)
    live = _history(agent_id, base_url, "cleared")
    assert [m.text for m in live.messages] == ["before", "Echo: before"]
    with other_process():
        _history(agent_id, base_url, "cleared").clear()
    assert live.messages == []


def test_clear_in_another_process_reaches_the_next_turn(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "cleared"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    model.invoke("before", config=config)
    with other_process():
        history = LettaChatMessageHistory(
            session_id="cleared", agent_id=agent_id, base_url=base_url
        )
        history.clear()
        new = history.conversation_id
    reply = model.invoke("after", config=config)
    assert reply.response_metadata["conversation_id"] == new
    assert stored_user_texts(letta, str(new)) == ["after"]


class Answer(BaseModel):
    """The structured answer."""

    answer: str


def _chain(model: Any, agent_id: str, base_url: str) -> RunnableWithMessageHistory:
    return RunnableWithMessageHistory(model, lambda key: _history(agent_id, base_url, key))


def test_a_turn_ending_on_a_tool_step_leaves_a_history_chain_usable(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "tool-step"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    step = '[tool:conversation_search {"query": "x"}] look'
    _chain(model.bind(max_steps=1), agent_id, base_url).invoke(step, config)
    reply = _chain(model, agent_id, base_url).invoke("next", config)
    assert reply.text == "Echo: next"
    assert stored_user_texts(letta, _conversation(model, "tool-step")) == [step, "next"]


def test_structured_output_leaves_the_session_free(agent_id: str, base_url: str) -> None:
    config = {"configurable": {"session_id": "structured"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    answer = model.with_structured_output(Answer).invoke("use the tool 'yes'", config)
    assert answer == Answer(answer="yes")
    assert model.invoke("next", config).text == "Echo: next"


def test_an_unclosed_stream_holds_the_next_turn_no_longer_than_busy_timeout(
    agent_id: str, base_url: str
) -> None:
    """Issue 12 item 7: the next turn deadlocked; now it waits at most ``busy_timeout``."""
    config = {"configurable": {"session_id": "unclosed"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url, busy_timeout=5, stream_tokens=True)
    stream = model.stream("[slow:2] [long:12] gone", config)
    next(iter(stream))  # the caller keeps the iterator and never closes it
    outcome: list[object] = []

    def next_turn() -> None:
        try:
            outcome.append(model.invoke("next", config).text)
        except Exception as error:
            outcome.append(error)

    turn = threading.Thread(target=next_turn)
    turn.start()
    turn.join(timeout=30)
    held = turn.is_alive()
    stream.close()  # lets a stuck turn go on
    turn.join()
    assert not held, "the next turn waited on the unclosed stream past busy_timeout"
    assert outcome == ["Echo: next"] or is_typed(outcome[0]), outcome  # type: ignore[arg-type]


@pytest.mark.xfail(strict=True, reason="issue 13 item 1: a renamed conversation stays in use")
def test_a_summary_rename_reaches_a_running_history(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "renamed"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    old = model.invoke("before", config=config).response_metadata["conversation_id"]
    live = _history(agent_id, base_url, "renamed")
    assert len(live.messages) == 2
    letta.conversations.update(old, summary="renamed by hand")
    with other_process():
        fresh = _history(agent_id, base_url, "renamed").messages
    assert fresh == []
    assert live.messages == fresh


def test_a_server_side_delete_reaches_a_running_history(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "deleted"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    old = model.invoke("before", config=config).response_metadata["conversation_id"]
    live = _history(agent_id, base_url, "deleted")
    assert len(live.messages) == 2
    letta.conversations.delete(old)
    with other_process():
        fresh = _history(agent_id, base_url, "deleted").messages
    assert live.messages == fresh


def test_a_running_history_equals_a_fresh_read_after_compaction(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "compacted"}}
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    live = _history(agent_id, base_url, "compacted")
    for text in ("one", "two", "three", "four", "five"):
        model.invoke(text, config=config)
        live.messages  # noqa: B018  (a running app reads after each turn)
    letta.conversations.messages.compact(str(live.conversation_id))
    with other_process():
        fresh = _history(agent_id, base_url, "compacted").messages
    assert [(type(m), m.id, m.text) for m in live.messages] == [
        (type(m), m.id, m.text) for m in fresh
    ]


def test_a_clear_reaches_a_replica_on_another_url(
    agent_id: str, letta: Letta, base_url: str
) -> None:
    config = {"configurable": {"session_id": "replica"}}
    proxy = FaultProxy(urlparse(base_url).port or 80)  # passes all: another URL, one server
    try:
        replica = ChatLetta(agent_id=agent_id, base_url=proxy.base_url)
        replica.invoke("before", config=config)
        history = _history(agent_id, base_url, "replica")
        history.clear()
        reply = replica.invoke("after", config=config)
    finally:
        proxy.close()
    assert reply.response_metadata["conversation_id"] == history.conversation_id
    assert stored_user_texts(letta, str(history.conversation_id)) == ["after"]


def test_a_tool_step_after_automatic_compaction_that_ends_in_error_is_not_a_success(
    letta: Letta, base_url: str
) -> None:
    agent = letta.agents.create(
        name="lc-stateful-small-window",
        model="openai-proxy/fake-llm",
        embedding="openai/text-embedding-3-small",
        context_window_limit=2000,
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    )
    try:
        model = ChatLetta(agent_id=agent.id, base_url=base_url)
        config = {"configurable": {"session_id": "small"}}
        for turn in range(3):  # the server compacts on its own from the second
            model.invoke(f"long {turn} " + "lorem ipsum " * 160, config=config)
        step = model.bind(max_steps=1)
        with pytest.raises(LettaRunError, match="ended without an answer") as raised:
            step.invoke('[tool:conversation_search {"query": "x"}] look', config=config)
        assert raised.value.error_type == "error"  # the run's stop reason
        assert model.invoke("the next turn", config=config).text  # the session goes on
    finally:
        letta.agents.delete(agent.id)


def test_a_copy_keyed_on_the_instance_uses_its_own_session(letta: Letta, base_url: str) -> None:
    """Found by the state machine (seed 3105763009): `model_copy(update={"session_id": ...})`
    kept the original's routing, so the copy's turns went to a new conversation."""
    agent = letta.agents.create(
        name="lc-stateful-copy",
        model="openai-proxy/fake-llm",
        embedding="openai/text-embedding-3-small",
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    )
    try:
        model = ChatLetta(agent_id=agent.id, base_url=base_url)
        first = model.invoke("one", config={"configurable": {"session_id": "k1%"}})
        keyed = model.model_copy(update={"session_id": "k1%"})
        again = keyed.invoke("two")
        conversation = first.response_metadata["conversation_id"]
        assert again.response_metadata["conversation_id"] == conversation
    finally:
        letta.agents.delete(agent.id)
