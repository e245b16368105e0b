"""Record Letta traffic once, replay it in CI: vcrpy settings for Letta.

Use with `pytest-recording <https://github.com/kiwicom/pytest-recording>`_ in your
``conftest.py``:

.. code-block:: python

    import pytest
    from langchain_letta.testing import letta_vcr_config, register_letta_matchers

    @pytest.fixture(scope="module")
    def vcr_config():
        return letta_vcr_config()

    def pytest_recording_configure(config, vcr):
        register_letta_matchers(vcr)

Then mark tests with ``@pytest.mark.vcr``; record with ``pytest --record-mode=once``
against a server, replay with the default ``--record-mode=none`` and no server.

What it does: scrubs API keys, auth headers and cookies from recordings; matches
requests on method, path, query and JSON body but not on scheme, host or port, so a
cassette recorded against one server replays against any base URL; replays SSE
bodies so streaming still yields chunks.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "SECRET_HEADERS",
    "json_body_matcher",
    "letta_vcr_config",
    "register_letta_matchers",
    "scrub_response",
]

SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
    "x-letta-api-key",
    "x-project",
)
"""Headers that never reach a cassette."""

_DROPPED_RESPONSE_HEADERS = ("set-cookie", "date", "server", "x-request-id")


def _body_json(body: bytes | str | None) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.loads(text)
    except ValueError:
        return text


def json_body_matcher(recorded: Any, replayed: Any) -> None:
    """A vcrpy matcher: request bodies equal as JSON (key order and spacing ignored)."""
    if _body_json(recorded.body) != _body_json(replayed.body):
        raise AssertionError(
            f"request body differs for {replayed.method} {replayed.path}: "
            f"{str(replayed.body)[:300]}"
        )


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop cookies and per-request noise from a recorded response."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in _DROPPED_RESPONSE_HEADERS:
            del headers[name]
    return response


def letta_vcr_config(**overrides: Any) -> dict[str, Any]:
    """Settings for vcrpy to record Letta traffic (see the module docstring); ``overrides`` win."""
    config: dict[str, Any] = {
        "filter_headers": [(name, None) for name in SECRET_HEADERS],
        "filter_query_parameters": [("api_key", None), ("token", None)],
        "match_on": ("method", "path", "query", "letta_json_body"),
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "allow_playback_repeats": False,
    }
    config.update(overrides)
    return config


def register_letta_matchers(vcr: Any) -> None:
    """Register the ``letta_json_body`` matcher on a ``vcr.VCR`` instance."""
    vcr.register_matcher("letta_json_body", json_body_matcher)
