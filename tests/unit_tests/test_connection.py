"""Connection settings: letta-client's retry pauses stay within the request timeout."""

from __future__ import annotations

import httpx
from letta_client._models import FinalRequestOptions

from langchain_letta.connection import make_clients


def test_a_retry_after_longer_than_the_timeout_is_cut_to_the_timeout() -> None:
    client, async_client = make_clients(
        base_url="http://letta.invalid", api_key=None, timeout=2.0, max_retries=2
    )
    options = FinalRequestOptions(method="get", url="/v1/agents/")
    asks_20s = httpx.Headers({"retry-after": "20"})

    assert client._calculate_retry_timeout(2, options, asks_20s) == 2.0
    assert async_client._calculate_retry_timeout(2, options, asks_20s) == 2.0
    assert client._calculate_retry_timeout(2, options, httpx.Headers({"retry-after": "1"})) == 1.0
