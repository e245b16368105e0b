"""Proves, in every run, that the real local Letta stack works end to end."""

from __future__ import annotations

import pytest
from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory

pytestmark = pytest.mark.live


def test_two_sessions_against_the_real_server(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    for key in ("alice", "bob"):
        model.invoke(f"hello, I am {key}", config={"configurable": {"session_id": key}})

    health = letta.health()
    assert health.status == "ok"
    threads = {
        key: LettaChatMessageHistory(session_id=key, agent_id=agent_id, base_url=base_url)
        for key in ("alice", "bob")
    }
    assert [m.text for m in threads["alice"].messages] == [
        "hello, I am alice",
        "Echo: hello, I am alice",
    ]
    assert [m.text for m in threads["bob"].messages] == ["hello, I am bob", "Echo: hello, I am bob"]
    assert threads["alice"].conversation_id != threads["bob"].conversation_id
