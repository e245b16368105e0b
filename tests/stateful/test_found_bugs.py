"""Plain reproductions of the bugs the state machine (``machine.UserPaths``) found.

Each is the shortest path to one broken promise, live against the real server. They are
``xfail(strict=True)`` while the fix is pending: the day a fix lands the test passes, the
strict xfail fails the run, and the marker comes off (and the operation comes out of
``machine.KNOWN_BUGS``, so the state machine draws it again).
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory
from tests.fault_proxy import FaultProxy
from tests.stateful.oracle import stored_user_texts

pytestmark = pytest.mark.live


def _conversation(model: ChatLetta, key: str) -> str:
    history = LettaChatMessageHistory(
        session_id=key, agent_id=model.agent_id, base_url=model.base_url
    )
    return str(history.conversation_id)


@pytest.mark.xfail(strict=True, reason="issue 12 item 1: a retry after a timeout re-sends")
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


@pytest.mark.xfail(strict=True, reason="issue 12 item 5: a cut foreground stream loses the reply")
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
