from __future__ import annotations

from collections.abc import Iterator

import pytest
from letta_client import Letta

from tests.conftest import agent_name

MODEL_HANDLE = "openai-proxy/fake-llm"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the standard tests that cannot replay ``live`` (``test_standard.LIVE_ONLY``)."""
    from tests.integration_tests.test_standard import LIVE_ONLY

    for item in items:
        if item.path.name == "test_standard.py" and getattr(item, "originalname", "") in LIVE_ONLY:
            item.add_marker(pytest.mark.live)


@pytest.fixture
def letta(base_url: str) -> Letta:
    return Letta(base_url=base_url, max_retries=0)


@pytest.fixture
def agent_id(letta: Letta, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh agent with ``human`` and ``persona`` memory blocks, deleted afterwards."""
    agent = letta.agents.create(
        name=agent_name(request),
        model=MODEL_HANDLE,
        embedding=EMBEDDING_HANDLE,
        memory_blocks=[
            {"label": "human", "value": "Name: Ada"},
            {"label": "persona", "value": "A concise assistant."},
        ],
    )
    yield agent.id
    letta.agents.delete(agent.id)


@pytest.fixture
def small_agent(letta: Letta, request: pytest.FixtureRequest) -> Iterator[str]:
    """An agent with a context window small enough for Letta to compact on its own."""
    agent = letta.agents.create(
        name=agent_name(request),
        model=MODEL_HANDLE,
        embedding=EMBEDDING_HANDLE,
        context_window_limit=2000,
        memory_blocks=[{"label": "human", "value": "x"}, {"label": "persona", "value": "y"}],
    )
    yield agent.id
    letta.agents.delete(agent.id)
