"""The package's promises hold on a conversation the server compacted on its own.

Letta 0.16.8 renumbers a compacted conversation's in-context messages on every turn, so
its listing by position no longer puts the newest messages last. Whatever looks for
"the newest messages" (a retry finding its stored turn, a structured-output call left
waiting, time travel deciding whether an input diverges) must not use that order.
Live against the real local server, on an agent with a 2,000-token window.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import (
    ChatLetta,
    LettaChatMessageHistory,
    LettaCursorError,
    LettaTimeoutError,
    state,
)
from tests.fault_proxy import FaultProxy
from tests.integration_tests.test_turns_exactly_once import HASTY, until, user_turns

pytestmark = pytest.mark.live


@pytest.fixture
def proxy(base_url: str) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(urlparse(base_url).port or 80)
    yield fault_proxy
    fault_proxy.close()


class Joke(BaseModel):
    setup: str
    punchline: str


def compacted_session(base_url: str, agent_id: str, session_id: str) -> str:
    """Long turns on `session_id` until the server compacts it, then two more; its id."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"session_id": session_id}}
    for turn in range(12):
        reply = model.invoke(f"turn {turn} " + "lorem ipsum " * 30, config=config)
        if reply.response_metadata.get("letta_system_alerts"):
            break
    else:
        pytest.fail("the server never compacted")
    for turn in range(2):  # the renumbered in-context messages now tie with evicted ones
        model.invoke(f"after {turn}", config=config)
    return str(reply.response_metadata["conversation_id"])


def test_a_retry_after_a_timeout_finds_its_turn_in_a_compacted_conversation(
    proxy: FaultProxy, small_agent: str, letta: Letta
) -> None:
    """The send is held until the client timed out, so no run id was seen: the retry
    looks for its turn among the conversation's newest messages."""
    conversation_id = compacted_session(proxy.base_url, small_agent, "retry")
    config = {"configurable": {"session_id": "retry"}}
    proxy.mode, proxy.budget = "hold_sends", 1
    with pytest.raises(LettaTimeoutError):
        ChatLetta(agent_id=small_agent, base_url=proxy.base_url, timeout=HASTY).invoke(
            "once", config=config
        )
    proxy.mode = "pass"
    proxy.release.set()
    until(lambda: "once" in user_turns(letta, conversation_id))
    until(lambda: not list(letta.runs.list(conversation_id=conversation_id, active=True)))

    reply = ChatLetta(agent_id=small_agent, base_url=proxy.base_url).invoke("once", config=config)

    assert proxy.held == 1
    assert reply.text == "Echo: once"
    assert user_turns(letta, conversation_id).count("once") == 1


def test_a_structured_call_left_waiting_is_answered_in_a_compacted_conversation(
    proxy: FaultProxy, small_agent: str
) -> None:
    compacted_session(proxy.base_url, small_agent, "structured")
    config = {"configurable": {"session_id": "structured"}}
    proxy.mode, proxy.budget = "stall_sends", 1
    with pytest.raises(LettaTimeoutError):
        ChatLetta(
            agent_id=small_agent, base_url=proxy.base_url, timeout=HASTY
        ).with_structured_output(Joke).invoke("[tool] a joke", config=config)

    reply = ChatLetta(agent_id=small_agent, base_url=proxy.base_url).invoke("next", config=config)

    assert proxy.held == 1
    assert reply.text == "Echo: next"


def test_history_turns_stay_in_the_sessions_compacted_conversation(
    base_url: str, small_agent: str
) -> None:
    conversation_id = compacted_session(base_url, small_agent, "chain")
    state.reset()  # a worker that restarts: it knows nothing of the session's last turns
    chain = RunnableWithMessageHistory(
        ChatLetta(agent_id=small_agent, base_url=base_url),
        lambda session_id: LettaChatMessageHistory(
            session_id=session_id, agent_id=small_agent, base_url=base_url
        ),
    )
    config = {"configurable": {"session_id": "chain"}}

    replies = [chain.invoke(f"chained {n}", config=config) for n in range(2)]

    assert [r.response_metadata["conversation_id"] for r in replies] == [conversation_id] * 2
    assert [r.text for r in replies] == ["Echo: chained 0", "Echo: chained 1"]


def test_cursors_page_a_compacted_thread_in_creation_order(base_url: str, small_agent: str) -> None:
    compacted_session(base_url, small_agent, "cursors")
    history = LettaChatMessageHistory(session_id="cursors", agent_id=small_agent, base_url=base_url)
    messages = history.messages
    middle = messages[len(messages) // 2]

    after = list(history.iter_messages(after=middle.id, page_size=2))
    before = list(history.iter_messages(order="desc", before=middle.id, page_size=2))

    assert after == messages[len(messages) // 2 + 1 :]
    assert before == messages[: len(messages) // 2][::-1]
    with pytest.raises(LettaCursorError):
        list(history.iter_messages(after="message-00000000-0000-4000-8000-000000000000"))


async def test_async_reads_of_a_compacted_thread_match_sync_reads_and_keep_the_prompt_first(
    base_url: str, small_agent: str
) -> None:
    compacted_session(base_url, small_agent, "async")
    other = ChatLetta(agent_id=small_agent, base_url=base_url).invoke(
        "elsewhere", config={"configurable": {"session_id": "other"}}
    )
    history = LettaChatMessageHistory(
        session_id="async", agent_id=small_agent, base_url=base_url, include_system=True
    )
    messages = history.messages

    assert [m.type for m in messages[:1]] == ["system"]
    assert "letta_message_type" not in messages[0].response_metadata  # the prompt, no summary
    assert await history.aget_messages() == messages
    assert [m async for m in history.aiter_messages(page_size=2)] == messages
    assert [m async for m in history.aiter_messages(order="desc")] == messages[::-1]
    with pytest.raises(LettaCursorError):  # a real message, of another conversation
        [m async for m in history.aiter_messages(after=str(other.id))]
