"""Request and response bodies as text and as JSON (helpers shared by the other modules)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NOT_JSON", "as_json", "body_text", "dump_json", "short"]

NOT_JSON = object()
"""What `as_json` returns for a text that is not JSON."""


def body_text(body: Any) -> str | None:
    """A body as text (`None` for no body or bytes that are not UTF-8)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(body)


def as_json(text: str | None) -> Any:
    """`text` parsed as JSON, or `NOT_JSON`."""
    if not text or text[0] not in '{["':
        return NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return NOT_JSON


def dump_json(value: Any) -> str:
    """Compact JSON, as cassettes store request and response bodies."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def short(value: Any, limit: int = 120) -> str:
    """A value shown in an error message, cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
