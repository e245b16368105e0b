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


def _bounded_pause(pause: float, timeout: object) -> float:
    """A retry's pause, never longer than the request timeout (a ``Retry-After`` may ask more)."""
    limit = timeout if isinstance(timeout, (int, float)) else getattr(timeout, "read", None)
    return min(pause, float(limit)) if isinstance(limit, (int, float)) else pause


class _Letta(Letta):
    """letta-client whose retry pauses never outlive the request timeout."""

    def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
        return _bounded_pause(super()._calculate_retry_timeout(*args, **kwargs), self.timeout)


class _AsyncLetta(AsyncLetta):
    """Async twin of :class:`_Letta`."""

    def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
        return _bounded_pause(super()._calculate_retry_timeout(*args, **kwargs), self.timeout)


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
    return _Letta(**options), _AsyncLetta(**options)
