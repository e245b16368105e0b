"""Connection settings: letta-client's retry pauses stay within the request timeout."""

from __future__ import annotations

import httpx
from letta_client._models import FinalRequestOptions

from langchain_letta import state
from langchain_letta.clients import shared_clients
from langchain_letta.connection import resolve_endpoint


def test_a_retry_after_longer_than_the_timeout_is_cut_to_the_timeout() -> None:
    client, async_client = shared_clients(
        resolve_endpoint("http://letta.invalid", None), timeout=2.0, max_retries=2
    )
    options = FinalRequestOptions(method="get", url="/v1/agents/")
    asks_20s = httpx.Headers({"retry-after": "20"})

    assert client._calculate_retry_timeout(2, options, asks_20s) == 2.0
    assert async_client._calculate_retry_timeout(2, options, asks_20s) == 2.0
    assert client._calculate_retry_timeout(2, options, httpx.Headers({"retry-after": "1"})) == 1.0


def test_models_histories_and_stores_with_the_same_settings_share_clients() -> None:
    from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaStore

    url, agent = "http://pool.invalid:8283", "agent-pool"
    model = ChatLetta(agent_id=agent, base_url=url, api_key="k1")
    history = LettaChatMessageHistory(session_id="s", agent_id=agent, base_url=url, api_key="k1")
    store = LettaStore(agent, base_url=url, api_key="k1")
    other_key = ChatLetta(agent_id=agent, base_url=url, api_key="k2")
    other_timeout = ChatLetta(agent_id=agent, base_url=url, api_key="k1", timeout=5.0)

    assert model.client is history._conversations.client is store._client
    assert model.async_client is history._conversations._async_client is store._async_client
    assert other_key.client is not model.client
    assert other_timeout.client is not model.client
    assert "k1" not in repr(state.CLIENTS)


def test_the_missing_twin_of_a_given_client_is_derived_from_it() -> None:
    from letta_client import AsyncLetta, Letta

    from langchain_letta import ChatLetta

    given = Letta(base_url="http://mine.invalid:9999", api_key="secret", max_retries=4)
    model = ChatLetta(agent_id="agent-twin", client=given)
    assert model.client is given
    assert str(model.async_client.base_url) == str(given.base_url)
    assert model.async_client.api_key == "secret"
    assert model.async_client.max_retries == 4

    given_async = AsyncLetta(base_url="http://mine.invalid:9998", api_key="other")
    model = ChatLetta(agent_id="agent-twin", async_client=given_async)
    assert model.async_client is given_async
    assert str(model.client.base_url) == str(given_async.base_url)
    assert model.client.api_key == "other"


def test_a_pooled_async_client_has_a_copy_per_event_loop() -> None:
    import asyncio

    from langchain_letta.clients import for_running_loop

    _, pooled = shared_clients(
        resolve_endpoint("http://loops.invalid", None), timeout=None, max_retries=2
    )

    async def current() -> object:
        return for_running_loop(pooled)

    first, second = asyncio.run(current()), asyncio.run(current())
    assert first is pooled
    assert second is not pooled
    assert str(second.base_url) == str(pooled.base_url)  # type: ignore[attr-defined]


def test_a_given_client_gets_one_twin_however_many_histories_use_it() -> None:
    import gc
    import weakref

    from letta_client import Letta

    from langchain_letta import ChatLetta, LettaChatMessageHistory

    given = Letta(base_url="http://mine.invalid:9997", api_key="secret")
    first = LettaChatMessageHistory(session_id="s1", agent_id="agent-twin", client=given)
    second = LettaChatMessageHistory(session_id="s2", agent_id="agent-twin", client=given)
    model = ChatLetta(agent_id="agent-twin", client=given)

    twin = first._conversations._async_client
    assert second._conversations._async_client is twin is model.async_client
    assert "secret" not in repr(state.TWINS)

    gone = weakref.ref(given)
    del given, first, second, model
    gc.collect()
    assert gone() is None
    assert len(state.TWINS) == 0  # a twin lives as long as the client it was derived from


def test_a_given_client_that_cannot_be_hashed_still_gets_a_twin() -> None:
    from letta_client import Letta

    from langchain_letta import LettaChatMessageHistory

    class Unhashable(Letta):
        __hash__ = None  # type: ignore[assignment]

    given = Unhashable(base_url="http://mine.invalid:9996")
    history = LettaChatMessageHistory(session_id="s", agent_id="agent-twin", client=given)

    assert str(history._conversations._async_client.base_url) == str(given.base_url)


def test_a_given_client_whose_key_changed_gets_a_twin_with_the_new_key() -> None:
    from letta_client import Letta

    from langchain_letta import LettaChatMessageHistory

    given = Letta(base_url="http://mine.invalid:9995", api_key="old-token")
    before = LettaChatMessageHistory(session_id="s", agent_id="agent-twin", client=given)
    given.api_key = "refreshed-token"
    after = LettaChatMessageHistory(session_id="s", agent_id="agent-twin", client=given)

    assert before._conversations._async_client.api_key == "old-token"
    assert after._conversations._async_client.api_key == "refreshed-token"
    assert "token" not in repr(list(state.TWINS.values()))  # a digest of the settings
