"""Request matching for replays: JSON bodies compared as JSON, `otid` values ignored.

Requests match on method, path, query and JSON body, never on scheme, host or port, so a
cassette recorded against one server replays against any base URL. Key order and spacing
do not count, and neither do `otid` values (each call may mint its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_letta.testing.bodies import NOT_JSON, as_json, body_text, short
from langchain_letta.testing.scrub import SCRUBBED

__all__ = ["IGNORED_BODY_KEYS", "body_json", "first_difference", "json_body_matcher"]

IGNORED_BODY_KEYS = frozenset({"otid"})
"""JSON keys whose values request matching ignores: an `otid` is minted client-side per
call, so it differs between a recording and a replay."""

Compare = Callable[[str, str], str | None]
"""How two strings differ (`None`: they do not), recorded value first."""


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in IGNORED_BODY_KEYS}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def body_json(body: bytes | str | None) -> Any:
    """A body as matching sees it: JSON without `otid` values, else its text."""
    text = body_text(body)
    if not text:
        return None
    parsed = as_json(text)
    return text if parsed is NOT_JSON else _comparable(parsed)


def _plain(recorded: str, sent: str) -> str | None:
    return None if recorded == sent else f"recorded {short(recorded)}, sent {short(sent)}"


def first_difference(
    recorded: Any, sent: Any, where: str = "", compare: Compare | None = None
) -> str | None:
    """Where two JSON values first differ (`None` if they do not), as `.path: what`.

    `compare` decides for two strings (by default: equal or not); a secret scrubbed on
    record matches whatever is sent.
    """
    if isinstance(recorded, dict) and isinstance(sent, dict):
        for key in list(recorded) + [k for k in sent if k not in recorded]:
            if key not in sent:
                return f"{where}.{key}: recorded {short(recorded[key])}, not sent"
            if key not in recorded:
                return f"{where}.{key}: sent {short(sent[key])}, not recorded"
            found = first_difference(recorded[key], sent[key], f"{where}.{key}", compare)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(sent, list):
        for index, (old, new) in enumerate(zip(recorded, sent, strict=False)):
            found = first_difference(old, new, f"{where}[{index}]", compare)
            if found:
                return found
        if len(recorded) != len(sent):
            return f"{where}: recorded {len(recorded)} items, sent {len(sent)}"
        return None
    if recorded == SCRUBBED and isinstance(sent, str):
        return None
    if isinstance(recorded, str) and isinstance(sent, str):
        found = (compare or _plain)(recorded, sent)
        return f"{where or 'body'}: {found}" if found else None
    if recorded != sent:
        return f"{where or 'body'}: recorded {short(recorded)}, sent {short(sent)}"
    return None


def json_body_matcher(sent: Any, recorded: Any) -> None:
    """A vcrpy matcher: request bodies equal as JSON.

    Key order, spacing and `otid` values are ignored. vcrpy passes the request being
    made first, the recorded one second.
    """
    difference = first_difference(body_json(recorded.body), body_json(sent.body))
    if difference:
        raise AssertionError(f"request body differs for {sent.method} {sent.path}: {difference}")
