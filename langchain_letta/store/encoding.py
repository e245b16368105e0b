"""How a LangGraph store item lives in a Letta archival passage (pure functions).

A passage's text has a readable part (what the embedding, and the agent, read) and a
marker line with the item as JSON:

```python
fact: Ada drinks green tea

lgstore lgk3f0c...(key) lgn91ab...(namespace prefix) lgn77e0...
{"namespace": ["memories", "ada"], "key": "tea", "value": {...}, "created_at": null}
```

What Letta 0.16.8 serves, measured, and why the layout is so:

- `agents.passages.list(search=...)` is a case-insensitive substring filter in SQL
  (`LIKE`: `%` and `_` are wildcards), applied before `limit`; oldest first.
  Lookups search only for hex markers: one per (namespace, key), one per namespace
  prefix. Listed passages carry their embedding (4096 floats, zero-padded).
- `agents.passages.search(query=, tags=, tag_match_mode=, top_k=, start_datetime=)`
  ranks by embedding distance, applies `top_k`, THEN filters tags: a tag filter with
  a small `top_k` misses (1 tagged passage among 11, `top_k=5`: 0 results). Results
  hold id, text, tags and a timestamp, no score, no embedding; a blank query gives none.
- `agents.passages.create(text=, tags=, created_at=)` stores one passage (no
  chunking) and honours `created_at`; there is no update and no single-passage read.
  `delete` of a missing passage answers 404.

So tags (`langgraph-store`, and `ns:<labels joined by '.'>` for each namespace
prefix) mark the store's passages and serve the agent's own tag searches; the store's
semantic search filters by the prefix tag with a `top_k` large enough (1,000) that
the cut before the tag filter rarely matters.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_letta.errors import LettaInputError

__all__ = [
    "MAX_KEY_CHARS",
    "STORE_TAG",
    "STORE_WORD",
    "StoredItem",
    "check_key",
    "check_namespace",
    "check_value",
    "decode",
    "encode",
    "key_marker",
    "matches_filter",
    "prefix_marker",
    "prefix_tag",
    "readable_text",
]

STORE_WORD = "lgstore"
STORE_TAG = "langgraph-store"
SEPARATOR = "."  # joins labels in tags; LangGraph forbids it in labels too
MAX_KEY_CHARS = 512
MAX_LABEL_CHARS = 256
_MARKER_LINE = f"\n{STORE_WORD} lgk"


@dataclass(frozen=True)
class StoredItem:
    """A store item decoded from a passage (timestamps come from the passage)."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: datetime | None


def check_namespace(namespace: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """The namespace as a tuple, or `LettaInputError` for a label that cannot be stored."""
    if not isinstance(namespace, tuple | list):
        raise LettaInputError(f"A namespace is a tuple of strings, not {type(namespace).__name__}.")
    if not namespace and not allow_empty:
        raise LettaInputError("A namespace needs at least one label.")
    for label in namespace:
        if not isinstance(label, str):
            raise LettaInputError(
                f"Namespace labels are strings; got {type(label).__name__} in {namespace!r}."
            )
        if not label or not label.strip():
            raise LettaInputError(f"Namespace labels cannot be empty; got {namespace!r}.")
        if SEPARATOR in label or "\x00" in label or "\n" in label:
            raise LettaInputError(
                f"Namespace label {label!r} contains {SEPARATOR!r}, a NUL byte or a newline."
            )
        if len(label) > MAX_LABEL_CHARS:
            raise LettaInputError(f"Namespace labels are at most {MAX_LABEL_CHARS} characters.")
    return tuple(namespace)


def check_key(key: Any) -> str:
    """The key, or `LettaInputError` for one that is not a short non-empty string."""
    if not isinstance(key, str) or not key:
        raise LettaInputError(f"A key is a non-empty string, not {key!r}.")
    if len(key) > MAX_KEY_CHARS:
        raise LettaInputError(f"Keys are at most {MAX_KEY_CHARS} characters; got {len(key)}.")
    return key


def check_value(value: Any) -> str:
    """The value as JSON, or `LettaInputError` for one that is not a JSON object."""
    if not isinstance(value, dict):
        raise LettaInputError(f"A value is a dict, not {type(value).__name__}.")
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise LettaInputError(f"The value is not JSON-serialisable: {error}") from error


def _digest(parts: Any, size: int) -> str:
    raw = json.dumps(parts, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:size]


def key_marker(namespace: tuple[str, ...], key: str) -> str:
    """The word that finds the passages of one (namespace, key) by substring search."""
    return "lgk" + _digest([list(namespace), key], 32)


def prefix_marker(prefix: tuple[str, ...]) -> str:
    """The word that finds every item whose namespace starts with `prefix`."""
    return "lgn" + _digest(list(prefix), 20)


def prefix_tag(prefix: tuple[str, ...]) -> str:
    """The tag every item whose namespace starts with `prefix` carries."""
    return "ns:" + SEPARATOR.join(prefix)


def _path_text(value: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def readable_text(value: dict[str, Any], index: list[str] | bool | None = None) -> str:
    """The part of the passage the embedding sees: `field: text` lines.

    `index` as in LangGraph's `put`: `None` every top-level field, a list the
    fields at those (dotted) paths, `False` none.
    """
    if index is False:
        return ""
    paths = list(value) if index is None or index is True else list(index)
    lines = []
    for path in paths:
        text = _path_text(value, path.split(".")) if index else value.get(path)
        if text is None:
            continue
        shown = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
        lines.append(f"{path}: {shown}")
    return "\n".join(lines)


def encode(
    namespace: tuple[str, ...],
    key: str,
    value: dict[str, Any],
    *,
    index: list[str] | bool | None = None,
    created_at: datetime | None = None,
) -> tuple[str, list[str]]:
    """The passage text and tags of one item (inputs already checked)."""
    markers = [key_marker(namespace, key)]
    markers += [prefix_marker(namespace[:depth]) for depth in range(1, len(namespace) + 1)]
    payload = {
        "namespace": list(namespace),
        "key": key,
        "value": value,
        "created_at": created_at.isoformat() if created_at else None,
    }
    body = json.dumps(payload, allow_nan=False, ensure_ascii=False, sort_keys=True)
    readable = readable_text(value, index)
    text = f"{readable}\n\n{STORE_WORD} {' '.join(markers)}\n{body}"
    prefixes = [prefix_tag(namespace[:depth]) for depth in range(1, len(namespace) + 1)]
    return text, [STORE_TAG, *prefixes]


def decode(text: str) -> StoredItem | None:
    """The item a passage holds, or `None` for a passage the store did not write."""
    start = text.rfind(_MARKER_LINE)
    if start < 0:
        return None
    _, _, body = text[start + 1 :].partition("\n")
    try:
        data = json.loads(body)
        namespace = tuple(data["namespace"])
        key, value, created = data["key"], data["value"], data.get("created_at")
        created_at = datetime.fromisoformat(created) if created else None
    except (ValueError, KeyError, TypeError):
        return None
    valid = (
        all(isinstance(label, str) for label in namespace)
        and isinstance(key, str)
        and isinstance(value, dict)
        and text[start + 1 :].startswith(f"{STORE_WORD} {key_marker(namespace, key)}")
    )
    return StoredItem(namespace, key, value, created_at) if valid else None


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and expected and all(k in _OPERATORS for k in expected):
        try:
            return all(_OPERATORS[op](actual, arg) for op, arg in expected.items())
        except TypeError:  # comparing unlike types never matches
            return False
    if isinstance(actual, float) and isinstance(expected, int | float):
        return math.isclose(actual, expected)
    return bool(actual == expected)


def matches_filter(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """LangGraph's `search` filter: each field equal, or `{"$gt": ...}` style operators."""
    if not filter:
        return True
    return all(
        _compare(_path_text(value, name.split(".")), expected) for name, expected in filter.items()
    )
