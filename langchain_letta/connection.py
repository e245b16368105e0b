"""Connection settings shared by ``ChatLetta`` and ``LettaChatMessageHistory``."""

from __future__ import annotations

import os
from typing import Any

from letta_client import AsyncLetta, Letta
from pydantic import SecretStr

__all__ = ["DEFAULT_BASE_URL", "make_clients", "resolve_api_key", "resolve_base_url"]

DEFAULT_BASE_URL = "https://api.letta.com"


def resolve_base_url(base_url: str | None) -> str:
    """``base_url``, else ``$LETTA_BASE_URL``, else Letta Cloud."""
    return (base_url or os.environ.get("LETTA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(api_key: SecretStr | str | None) -> SecretStr | None:
    """``api_key``, else ``$LETTA_API_KEY``, as a ``SecretStr`` (``None`` when unset)."""
    if isinstance(api_key, SecretStr):
        return api_key
    value = api_key or os.environ.get("LETTA_API_KEY")
    return SecretStr(value) if value else None


def make_clients(
    *,
    base_url: str,
    api_key: SecretStr | None,
    timeout: float | None,
    max_retries: int,
) -> tuple[Letta, AsyncLetta]:
    """A sync and an async letta-client for the same server and credentials."""
    options: dict[str, Any] = {
        "base_url": base_url,
        "api_key": api_key.get_secret_value() if api_key else None,
        "max_retries": max_retries,
    }
    if timeout is not None:
        options["timeout"] = timeout
    return Letta(**options), AsyncLetta(**options)
