"""Session keys -> Letta conversations: stores, the in-process cache, the race rule.

A session key is any string an application chooses (a user id, a chat id, LangGraph's
``thread_id``). Each key maps to exactly one conversation of the agent, created on first
use. By default the mapping lives on the Letta server itself, as a tag in the
conversation's ``summary``, so it survives restarts and works across processes and
replicas with nothing else to run. Apps that keep the mapping in their own database
pass a :class:`SessionStore`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from letta_client import Letta

from langchain_letta.errors import LettaInputError, translate_error
from langchain_letta.memory import LEDGER

__all__ = [
    "InMemorySessionStore",
    "JsonFileSessionStore",
    "SessionResolver",
    "SessionStore",
    "session_tag",
]

_TAG_PREFIX = "langchain-letta session: "
_MAX_KEY_LENGTH = 512
_LIST_PAGE = 100
_SETTLE_SECONDS = 0.05


def session_tag(session_id: str) -> str:
    """The ``summary`` text that marks a conversation as the one of ``session_id``."""
    return f"{_TAG_PREFIX}{session_id}"


def check_session_id(session_id: object) -> str:
    """``session_id`` if it is a usable session key, else a clear ``LettaInputError``."""
    if not isinstance(session_id, str):
        raise LettaInputError(f"A session key must be a string, not {type(session_id).__name__}.")
    if not session_id.strip() or len(session_id) > _MAX_KEY_LENGTH or "\n" in session_id:
        raise LettaInputError(
            f"A session key must be a non-empty single line of at most {_MAX_KEY_LENGTH} "
            f"characters; got {session_id[:40]!r}."
        )
    return session_id


@runtime_checkable
class SessionStore(Protocol):
    """Where an application keeps the session key -> conversation id mapping.

    Implementations must be safe to call from several threads.
    """

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, or ``None`` when it has none yet."""

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Remember the session's conversation id."""


class InMemorySessionStore:
    """A session store that lives as long as the process (for tests and scripts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mapping: dict[tuple[str, str], str] = {}

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, if known."""
        with self._lock:
            return self._mapping.get((agent_id, session_id))

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Remember the session's conversation id."""
        with self._lock:
            self._mapping[(agent_id, session_id)] = conversation_id


class JsonFileSessionStore:
    """A durable local session store: one JSON file, rewritten atomically.

    For a single machine; use the default server-side mapping for several replicas.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, if the file knows it."""
        with self._lock:
            return self._read().get(f"{agent_id}\n{session_id}")

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Remember the session's conversation id in the file."""
        with self._lock:
            data = self._read()
            data[f"{agent_id}\n{session_id}"] = conversation_id
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)


_CACHE: dict[tuple[str, str, str], str] = {}
_CACHE_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}


class SessionResolver:
    """Resolves session keys of one agent to conversation ids.

    A key already resolved in this process costs no request (a process-wide cache,
    shared by every ``ChatLetta`` and history of the same server and agent). A cold key
    is looked up on the server (or in ``store``); a new key gets a new conversation.
    Two processes creating the same new key at once converge on one conversation: each
    creates, lists again, keeps the oldest and deletes its own empty loser.
    """

    def __init__(self, client: Letta, agent_id: str, store: SessionStore | None = None) -> None:
        self.client = client
        self.agent_id = agent_id
        self.store = store

    def _cache_key(self, session_id: str) -> tuple[str, str, str]:
        return (str(self.client.base_url), self.agent_id, session_id)

    def cached(self, session_id: str) -> str | None:
        """The conversation id of the key if this process already knows it."""
        with _CACHE_LOCK:
            return _CACHE.get(self._cache_key(check_session_id(session_id)))

    def forget(self, session_id: str) -> None:
        """Drop the cached mapping of the key (e.g. after its conversation was deleted)."""
        with _CACHE_LOCK:
            _CACHE.pop(self._cache_key(session_id), None)

    def resolve(self, session_id: str, *, create: bool = True) -> str | None:
        """The conversation id of ``session_id``, created on first use when ``create``."""
        cached = self.cached(session_id)
        if cached:
            return cached
        key = self._cache_key(session_id)
        with _CACHE_LOCK:
            key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
        with key_lock:
            with _CACHE_LOCK:
                if key in _CACHE:
                    return _CACHE[key]
            try:
                conversation_id = self._lookup(session_id)
                if conversation_id is None and create:
                    conversation_id = self._create(session_id)
            except Exception as error:
                raise translate_error(error) from error
            if conversation_id:
                with _CACHE_LOCK:
                    _CACHE[key] = conversation_id
            return conversation_id

    def renew(self, session_id: str) -> str:
        """Give ``session_id`` a fresh, empty conversation; the old one is kept, untagged."""
        old = self.resolve(session_id, create=False)
        try:
            if old and self.store is None:
                self.client.conversations.update(
                    old, summary=f"(cleared) {session_tag(session_id)}"
                )
            new = self._create(session_id)
        except Exception as error:
            raise translate_error(error) from error
        with _CACHE_LOCK:
            _CACHE[self._cache_key(session_id)] = new
        return new

    # ------------------------------------------------------------------------ server side

    def _lookup(self, session_id: str) -> str | None:
        if self.store is not None:
            return self.store.get(self.agent_id, session_id)
        tagged = self._tagged(session_id)
        return tagged[0].id if tagged else None

    def _tagged(self, session_id: str) -> list[Any]:
        """The agent's conversations tagged exactly with the key, oldest first."""
        tag = session_tag(session_id)
        found: list[Any] = []
        after: str | None = None
        while True:
            page = list(
                self.client.conversations.list(
                    agent_id=self.agent_id,
                    summary_search=tag,
                    order="asc",
                    order_by="created_at",
                    limit=_LIST_PAGE,
                    after=after,
                )
            )
            found.extend(conv for conv in page if conv.summary == tag)
            if len(page) < _LIST_PAGE:
                break
            after = page[-1].id
        return sorted(found, key=lambda conv: (conv.created_at, conv.id))

    def _create(self, session_id: str) -> str:
        mine = self.client.with_options(max_retries=0).conversations.create(
            agent_id=self.agent_id, summary=session_tag(session_id)
        )  # never re-POSTed: a create that timed out may have happened
        LEDGER.created(self.agent_id, mine.id)
        if self.store is not None:
            self.store.set(self.agent_id, session_id, mine.id)
            return str(mine.id)
        winner = self._winner(session_id, mine.id)
        if winner == mine.id:
            # A rival created just before us may not be visible yet: look once more.
            time.sleep(_SETTLE_SECONDS)
            winner = self._winner(session_id, mine.id)
        if winner != mine.id:
            self.client.conversations.delete(mine.id)
        return winner

    def _winner(self, session_id: str, mine: str) -> str:
        """The oldest conversation tagged with the key (``mine`` if the list lags)."""
        tagged = self._tagged(session_id)
        return str(tagged[0].id) if tagged else mine
