"""Letta ids in recordings: which strings are ids, and their stable placeholders.

Every server-minted id (`agent-<uuid>`, `conv-<uuid>`, `message-<uuid>`,
`run-<uuid>`, bare uuids such as an `otid`) and every tool call id (`call_...`)
becomes, on record, a placeholder that is the same within one cassette and unique to it:
`<8 hex of the cassette name's hash>-0000-4000-8000-<counter>`, numbered in order of
first appearance. Placeholders (and Letta's fixed all-zero ids) are left as they are.

A session key is not an id, whatever it holds: the session tag that carries it
(`langchain-letta session <digest>: <key>` in a conversation's `summary`, and the older
`langchain-letta session: <key>` form) is stored as it is, so a test must use the same
session keys when replaying as when recording, and one that makes up a random key per run
fails clearly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["ID", "IdNormalizer", "cassette_scope", "find_ids", "replace_ids"]

UUID = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
)
"""A uuid anywhere in a text (the part of a Letta id after its `agent-`/`conv-` prefix)."""

CALL_ID = re.compile(r"(?<![A-Za-z0-9_])call_[A-Za-z0-9]{16,}(?![A-Za-z0-9])")
"""A tool call id."""

ID = re.compile(f"{UUID.pattern}|{CALL_ID.pattern}")
"""Either kind of id."""

SESSION_TAG = re.compile(
    r'langchain-letta (?:session|cleared)(?: [0-9a-f]{32})?: (?:[^"\\\n]|\\.)*'  # text or JSON
    r"|langchain-letta(?:\+|%20)session(?:(?:\+|%20)[0-9a-f]{32})?%3A(?:\+|%20)[^&#\s\"']*"
)
"""A session tag: the session key in it is not an id (see the module docstring)."""

_TAG_OR_ID = re.compile(f"(?P<tag>{SESSION_TAG.pattern})|(?P<id>{ID.pattern})")
_TAG_OR_UUID = re.compile(f"(?P<tag>{SESSION_TAG.pattern})|(?P<id>{UUID.pattern})")
_TAG_OR_CALL_ID = re.compile(f"(?P<tag>{SESSION_TAG.pattern})|(?P<id>{CALL_ID.pattern})")


def find_ids(text: str) -> list[str]:
    """The ids in `text`, in order, leaving out anything inside a session tag."""
    return [m.group("id") for m in _TAG_OR_ID.finditer(text) if m.group("id")]


def replace_ids(text: str, replace: Callable[[str], str], pattern: re.Pattern[str] = ID) -> str:
    """`text` with each id outside session tags replaced by `replace(id)`.

    `pattern` says which ids: `ID` (both kinds), `UUID` or `CALL_ID`.
    """
    combined = {ID: _TAG_OR_ID, UUID: _TAG_OR_UUID, CALL_ID: _TAG_OR_CALL_ID}[pattern]
    return combined.sub(lambda m: replace(m.group("id")) if m.group("id") else m.group(0), text)


_PLACEHOLDER = re.compile(r"^[0-9a-f]{8}-0000-4000-8000-(\d{12})$")
_CALL_PLACEHOLDER = re.compile(r"^call_[0-9a-f]{8}x(\d{15})$")


def cassette_scope(cassette_path: str | Path) -> str:
    """A cassette's name, independent of where the checkout lives."""
    path = Path(cassette_path)
    return f"{path.parent.name}/{path.name}"


class IdNormalizer:
    """Rewrites Letta ids to placeholders stable within one cassette and unique to it.

    Any uuid is rewritten, its `agent-`/`conv-`/... prefix kept.

    A placeholder is `<8 hex of the cassette name's hash>-0000-4000-8000-<counter>`;
    placeholders (and Letta's fixed all-zero ids) are left as they are.
    """

    def __init__(self, scope: str) -> None:
        self.tag = hashlib.sha256(scope.encode()).hexdigest()[:8]
        self.mapping: dict[str, str] = {}
        self.counter = 0

    def seen(self, text: str) -> None:
        """Count placeholders already in `text` so new ones never collide with them."""
        for found in UUID.findall(text):
            match = _PLACEHOLDER.match(found)
            if match and found.startswith(self.tag):
                self.counter = max(self.counter, int(match.group(1)))
        for found in CALL_ID.findall(text):
            match = _CALL_PLACEHOLDER.match(found)
            if match and found.startswith(f"call_{self.tag}"):
                self.counter = max(self.counter, int(match.group(1)))

    def placeholder(self, value: str) -> str:
        """The placeholder for one uuid."""
        if _PLACEHOLDER.match(value):
            return value
        if value not in self.mapping:
            self.counter += 1
            self.mapping[value] = f"{self.tag}-0000-4000-8000-{self.counter:012d}"
        return self.mapping[value]

    def call_id(self, value: str) -> str:
        """The placeholder for one tool call id (`call_...`)."""
        if _CALL_PLACEHOLDER.match(value):
            return value
        if value not in self.mapping:
            self.counter += 1
            self.mapping[value] = f"call_{self.tag}x{self.counter:015d}"
        return self.mapping[value]

    def text(self, text: str) -> str:
        """`text` with every uuid and tool call id in it replaced by its placeholder.

        Uuids first, then tool call ids; session tags are left as they are.
        """
        text = replace_ids(text, self.placeholder, UUID)
        return replace_ids(text, self.call_id, CALL_ID)
