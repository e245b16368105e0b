"""Connection settings: the server URL and its credentials, with none left in the URL.

Credentials written into a `base_url` (`https://user:pass@host` or
`https://host?api_key=...`) are split off before anything else sees the URL: the
user and password become a basic `Authorization` header, an `api_key` (or
`token`) query value becomes the API key, and both are kept as `SecretStr`. The
URL that remains, and that reprs, dumps, traces, logs and errors show, carries none.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from langchain_letta.errors import LettaInputError

__all__ = [
    "DEFAULT_BASE_URL",
    "Endpoint",
    "resolve_api_key",
    "resolve_base_url",
    "resolve_endpoint",
]

DEFAULT_BASE_URL = "https://api.letta.com"
_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token"})


@dataclass(frozen=True)
class Endpoint:
    """A server URL free of credentials, and the credentials that came with it."""

    url: str
    api_key: SecretStr | None
    basic_auth: SecretStr | None = None

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r})"


def resolve_base_url(base_url: str | None) -> str:
    """`base_url`, else `$LETTA_BASE_URL`, else Letta Cloud, without credentials."""
    return resolve_endpoint(base_url, None).url


def resolve_api_key(api_key: SecretStr | str | None) -> SecretStr | None:
    """`api_key`, else `$LETTA_API_KEY`, as a `SecretStr` (`None` when unset)."""
    if isinstance(api_key, SecretStr):
        return api_key
    value = api_key or os.environ.get("LETTA_API_KEY")
    return SecretStr(value) if value else None


def resolve_endpoint(base_url: str | None, api_key: SecretStr | str | None) -> Endpoint:
    """The server URL and credentials, with any credentials inside the URL split off.

    Raises:
        LettaInputError: the URL is not an `http(s)` URL, carries a query other than
            an API key, or carries an API key as well as `api_key`.

    """
    raw = base_url or os.environ.get("LETTA_BASE_URL") or DEFAULT_BASE_URL
    if not isinstance(raw, str):
        raise LettaInputError(f"base_url must be a string, not {type(raw).__name__}.")
    try:
        parts = urlsplit(raw.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None  # the error is raised below, with no trace of the URL
        parts = urlsplit("")
    if parts.scheme not in {"http", "https"} or not host:
        raise LettaInputError("base_url must be an http:// or https:// URL with a host.")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
    key = resolve_api_key(api_key)
    url_key = _query_key(parts.query, url)
    if url_key is not None:
        if key is not None and api_key is not None:
            raise LettaInputError("Give the API key as api_key or inside base_url, not both.")
        key = url_key
    if parts.fragment:
        raise LettaInputError(f"base_url must not carry a fragment ({url}).")
    basic = None
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        basic = SecretStr("Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii"))
        if key is not None:
            raise LettaInputError(
                "base_url carries a user and password and an API key is set as well; both "
                "would go in the Authorization header. Give one of them."
            )
    return Endpoint(url, key, basic)


def _query_key(query: str, url: str) -> SecretStr | None:
    if not query:
        return None
    pairs = parse_qsl(query, keep_blank_values=True)
    keys = [value for name, value in pairs if name.lower() in _KEY_PARAMS]
    if len(keys) != len(pairs) or len(keys) > 1 or not keys[0]:
        names = sorted({name for name, _ in pairs if name.lower() not in _KEY_PARAMS})
        raise LettaInputError(
            f"base_url must not carry a query string (parameters {names} on {url}); "
            "only one api_key=... is accepted, and it is used as the API key."
        )
    return SecretStr(keys[0])
