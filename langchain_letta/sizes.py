"""Token estimates without a tokenizer: what a turn is likely to cost the agent's context.

An estimate refuses only input that surely cannot fit, so it errs low:

- text: a quarter token per ASCII character (English averages about four characters a
  token) and one token per other character (CJK runs about one to two characters a
  token; accented Latin text mostly ASCII anyway);
- an image: a flat :data:`IMAGE_TOKENS`, whatever its size in bytes (providers bill
  images by their pixels, not by the length of their base64 text);
- a message: :data:`MESSAGE_TOKENS` of framing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["IMAGE_TOKENS", "MESSAGE_TOKENS", "estimate_payload_tokens", "estimate_text_tokens"]

IMAGE_TOKENS = 1_000
MESSAGE_TOKENS = 4


def estimate_text_tokens(text: str) -> int:
    """About how many tokens ``text`` takes."""
    ascii_chars = sum(1 for char in text if char.isascii())
    return (ascii_chars + 3) // 4 + (len(text) - ascii_chars)


def estimate_payload_tokens(payloads: Iterable[dict[str, Any]]) -> int:
    """About how many tokens Letta message payloads take in the agent's context."""
    return sum(MESSAGE_TOKENS + _content_tokens(payload) for payload in payloads)


def _content_tokens(payload: dict[str, Any]) -> int:
    if payload.get("type") == "approval":
        return sum(
            estimate_text_tokens(str(approval.get("tool_return") or ""))
            for approval in payload.get("approvals") or []
        )
    content = payload.get("content")
    if isinstance(content, str):
        return estimate_text_tokens(content)
    total = 0
    for part in content or []:
        if part.get("type") == "image":
            total += IMAGE_TOKENS
        elif part.get("type") == "text":
            total += estimate_text_tokens(str(part.get("text") or ""))
        else:
            total += estimate_text_tokens(json.dumps(part, default=str))
    return total
