"""Secrets never reach a cassette: headers cut, keys and tokens in bodies and URLs replaced.

Only the `content-type` header is kept on requests and responses (no `Authorization`,
API key, cookie or `Set-Cookie`); API keys, bearer tokens and secret-named JSON fields in
bodies and query strings become `<scrubbed>`. A scrubbed value recorded matches any value
sent at replay, so the API key may differ between record and replay (or be absent).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "KEPT_HEADERS",
    "SCRUBBED",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMETERS",
    "keep_headers",
    "scrub_json",
    "scrub_response",
    "scrub_text",
    "scrub_uri",
]

SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
    "x-letta-api-key",
    "x-project",
)
"""Headers that never reach a cassette (every header but `content-type` is dropped)."""

KEPT_HEADERS = ("content-type",)
"""The only headers kept in a cassette, on requests and responses."""

SECRET_QUERY_PARAMETERS = ("api_key", "apikey", "token", "access_token")
"""Query parameters whose values are scrubbed."""

SCRUBBED = "<scrubbed>"
"""What a secret is replaced with."""

_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:api[_-]?key|apikey|password|passwd|secret|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|bearer|authorization|cookie|token)$",
    re.IGNORECASE,
)
_SECRET_TEXT = (
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"),  # OpenAI/Anthropic/Letta-style keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
)


def scrub_text(text: str) -> str:
    """`text` with API keys and bearer tokens replaced."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(SCRUBBED, text)
    return text


def scrub_json(value: Any) -> Any:
    """A JSON value with secret-named fields and secret-looking strings replaced."""
    if isinstance(value, dict):
        return {
            key: (
                SCRUBBED
                if _SECRET_KEY.match(key) and isinstance(item, str) and item
                else scrub_json(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub_json(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_uri(uri: str) -> str:
    """A URL with secret query parameters and secret-looking text replaced."""
    parts = urlsplit(uri)
    if not parts.query:
        return scrub_text(uri)
    query = [
        (key, SCRUBBED if key.lower() in SECRET_QUERY_PARAMETERS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return scrub_text(urlunsplit(parts._replace(query=urlencode(query))))


def keep_headers(headers: Any) -> dict[str, Any]:
    """Only the headers a cassette keeps."""
    return {name: value for name, value in (headers or {}).items() if name.lower() in KEPT_HEADERS}


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep only the `content-type` header of a recorded response (vcrpy hook)."""
    response["headers"] = keep_headers(response.get("headers"))
    return response
