"""Test an app's Letta chain in CI with no Letta server: record once, replay forever.

The app below is the usual one: ``RunnableWithMessageHistory`` around ``ChatLetta``, one
``LettaChatMessageHistory`` per session key. Its test runs the chain for real once against
a server and records the traffic to ``examples/cassettes/test_recorded_chain/``
(``examples/conftest.py`` has the three lines of setup); afterwards every run replays that
recording with the network blocked, against a base URL that does not even resolve.

Record (or re-record after changing what the app sends)::

    LETTA_BASE_URL=http://127.0.0.1:8283 pytest examples/test_recorded_chain.py \
        --record-mode=rewrite

Replay (CI, no server, no API key)::

    pytest examples/test_recorded_chain.py
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory

# block_network: while replaying, any request missing from the cassette fails, never leaks.
pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

REPLAY_BASE_URL = "http://letta.example.invalid"


# --- the app ------------------------------------------------------------------------------


def build_chain(agent_id: str, base_url: str) -> RunnableWithMessageHistory:
    """The app's chain: one Letta agent, one Letta conversation per session key."""

    def history(session_id: str) -> LettaChatMessageHistory:
        return LettaChatMessageHistory(session_id=session_id, agent_id=agent_id, base_url=base_url)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RunnableWithMessageHistory is deprecated in 1.x
        return RunnableWithMessageHistory(ChatLetta(agent_id=agent_id, base_url=base_url), history)


# --- its test -----------------------------------------------------------------------------


@pytest.fixture
def base_url(record_mode: str, request: pytest.FixtureRequest) -> str:
    """The real server while recording; a host that does not exist while replaying."""
    if record_mode == "none" and not request.config.getoption("disable_recording"):
        return REPLAY_BASE_URL
    return os.environ.get("LETTA_BASE_URL", "http://127.0.0.1:8283")


@pytest.fixture
def agent_id(base_url: str) -> Iterator[str]:
    """A throwaway agent (recorded too: the replay gets the recorded agent's id)."""
    letta = Letta(base_url=base_url, max_retries=0)
    agent = letta.agents.create(
        name="example-recorded-chain",
        model=os.environ.get("LETTA_EXAMPLE_MODEL", "openai-proxy/fake-llm"),
        embedding=os.environ.get("LETTA_EXAMPLE_EMBEDDING", "openai/text-embedding-3-small"),
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    )
    yield agent.id
    letta.agents.delete(agent.id)


def test_two_turns_in_one_session_stored_once(agent_id: str, base_url: str) -> None:
    chain = build_chain(agent_id, base_url)
    ada = {"configurable": {"session_id": "ada"}}

    first = chain.invoke("Hello, I am Ada.", config=ada)
    chunks = list(chain.stream("What is my name?", config=ada))  # SSE replayed as chunks

    assert first.text
    assert len(chunks) > 1
    history = LettaChatMessageHistory(session_id="ada", agent_id=agent_id, base_url=base_url)
    assert [m.type for m in history.messages] == ["human", "ai", "human", "ai"]
    assert history.messages[0].text == "Hello, I am Ada."
    assert history.messages[1].id == first.id
