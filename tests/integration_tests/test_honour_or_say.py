"""Honour or say against the real server: `model=` at init runs the turn on that model."""

from __future__ import annotations

import pytest
from letta_client import Letta

from langchain_letta import ChatLetta, LettaNotFoundError
from tests.integration_tests.conftest import MODEL_HANDLE

pytestmark = pytest.mark.live


def test_model_at_init_is_the_model_the_turn_runs_on(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    unknown = ChatLetta(agent_id=agent_id, base_url=base_url, model="nobody/no-such-model")
    conversation = letta.conversations.create(agent_id=agent_id)
    config = {"configurable": {"conversation_id": conversation.id}}

    with pytest.raises(LettaNotFoundError, match="no-such-model"):
        unknown.invoke("hello", config=config)  # the server was asked to run it

    known = ChatLetta(agent_id=agent_id, base_url=base_url, model=MODEL_HANDLE)
    reply = known.invoke("hello", config=config)

    assert reply.text == "Echo: hello"
    assert reply.response_metadata["model_name"] == MODEL_HANDLE
    stored = letta.conversations.messages.list(conversation.id, order="asc", limit=50)
    assert [item.message_type for item in stored if item.message_type != "system_message"] == [
        "user_message",
        "assistant_message",
    ]  # the refused turn stored nothing
