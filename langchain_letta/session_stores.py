"""Where an application keeps session keys -> conversation ids, if not on the server.

By default the mapping lives on the Letta server (`langchain_letta.sessions`). An app
that keeps it in its own database passes a `SessionStore`: any object with `get`, `set`
and an atomic `set_if_absent`. Two are included: `InMemorySessionStore` (tests and
scripts) and `JsonFileSessionStore` (one machine, several processes).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from langchain_letta.errors import LettaSessionStoreError

__all__ = ["InMemorySessionStore", "JsonFileSessionStore", "SessionStore"]


@runtime_checkable
class SessionStore(Protocol):
    """Where an application keeps the session key -> conversation id mapping.

    Implementations must be safe to call from several threads, and
    `set_if_absent` must be atomic across every process that shares the store:
    it is the race rule (the first mapping written wins; every caller uses it).
    """

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, or `None` when it has none yet."""

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Map the session to `conversation_id`, replacing any mapping (`clear()`)."""

    def set_if_absent(self, agent_id: str, session_id: str, conversation_id: str) -> str:
        """Map the session to `conversation_id` unless it is mapped already.

        Returns the mapping that holds afterwards: `conversation_id` if this call
        wrote it, else the one written first.
        """


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
        """Map the session to `conversation_id`."""
        with self._lock:
            self._mapping[(agent_id, session_id)] = conversation_id

    def set_if_absent(self, agent_id: str, session_id: str, conversation_id: str) -> str:
        """Map the session unless it is mapped; return the mapping that holds."""
        with self._lock:
            return self._mapping.setdefault((agent_id, session_id), conversation_id)


class JsonFileSessionStore:
    """A durable local session store: one JSON file, safe for several processes.

    Every read and write holds an exclusive `flock` on the file's folder (POSIX
    only), and the file is rewritten atomically, so worker processes of one machine
    can share it. A file that is not a JSON object of strings raises
    `LettaSessionStoreError`; an empty file is an
    empty store. For several machines, use the default server-side mapping.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the file's folder (threads here, other processes)."""
        import fcntl  # POSIX; imported here so the package imports everywhere

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                fcntl.flock(folder, fcntl.LOCK_EX)
                yield
            finally:
                os.close(folder)  # closing releases the lock

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise LettaSessionStoreError(
                f"Cannot read the session file {self.path}: {error}."
            ) from None
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise LettaSessionStoreError(
                f"The session file {self.path} is not valid JSON ({error.msg} at line "
                f"{error.lineno}); fix or remove it. Nothing was written."
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in data.items()
        ):
            raise LettaSessionStoreError(
                f"The session file {self.path} is not a JSON object of strings; fix or "
                "remove it. Nothing was written."
            )
        return data

    def _write(self, data: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, if the file knows it."""
        with self._locked():
            return self._read().get(f"{agent_id}\n{session_id}")

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Map the session to `conversation_id` in the file."""
        with self._locked():
            data = self._read()
            data[f"{agent_id}\n{session_id}"] = conversation_id
            self._write(data)

    def set_if_absent(self, agent_id: str, session_id: str, conversation_id: str) -> str:
        """Map the session unless the file maps it; return the mapping that holds."""
        with self._locked():
            data = self._read()
            key = f"{agent_id}\n{session_id}"
            if key not in data:
                data[key] = conversation_id
                self._write(data)
            return data[key]


# ---------------------------------------------------------------------------- process state
