"""A session store on SQLite (stdlib): how to keep session keys in your own database.

By default langchain-letta keeps the session key -> conversation mapping on the Letta
server. An app that already has a database can keep it there instead: implement the
three methods of ``langchain_letta.SessionStore``. The one that matters is
``set_if_absent``, the race rule: when several workers start the same new session at
once, each creates a conversation and offers it; the database keeps the first and every
worker uses that one (the resolver deletes its own unused conversation). Here a primary
key and ``INSERT ... ON CONFLICT DO NOTHING`` make the step atomic; with Postgres or
MySQL use the same statement (or ``INSERT IGNORE``).

    python examples/sqlite_session_store.py   # against $LETTA_BASE_URL
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


class SqliteSessionStore:
    """``SessionStore`` over one SQLite table; safe for threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        with self._connection() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS letta_sessions ("
                " agent_id TEXT NOT NULL, session_id TEXT NOT NULL,"
                " conversation_id TEXT NOT NULL, PRIMARY KEY (agent_id, session_id))"
            )

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:  # one connection per thread, as sqlite3 wants
            connection = sqlite3.connect(self.path, timeout=30)
            self._local.connection = connection
        return connection

    def get(self, agent_id: str, session_id: str) -> str | None:
        """The conversation id of the session, if stored."""
        row = (
            self._connection()
            .execute(
                "SELECT conversation_id FROM letta_sessions WHERE agent_id = ? AND session_id = ?",
                (agent_id, session_id),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
        """Map the session to ``conversation_id`` (``clear()`` replaces the mapping)."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO letta_sessions VALUES (?, ?, ?) ON CONFLICT (agent_id, session_id)"
                " DO UPDATE SET conversation_id = excluded.conversation_id",
                (agent_id, session_id, conversation_id),
            )

    def set_if_absent(self, agent_id: str, session_id: str, conversation_id: str) -> str:
        """Map the session unless it is mapped; return the mapping that holds (atomic)."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO letta_sessions VALUES (?, ?, ?)"
                " ON CONFLICT (agent_id, session_id) DO NOTHING",
                (agent_id, session_id, conversation_id),
            )
        found = self.get(agent_id, session_id)
        assert found is not None  # a mapping is never removed
        return found


def main() -> int:
    import tempfile

    from example_setup import DEMO_MEMORY, Checks, connect, letta_for, named_agent

    from langchain_letta import ChatLetta, LettaChatMessageHistory

    url, api_key = connect()
    letta = letta_for(url, api_key)
    agent = named_agent(letta, "langchain-letta-sqlite-store", memory_blocks=DEMO_MEMORY)
    check = Checks()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteSessionStore(Path(folder) / "sessions.sqlite")
        model = ChatLetta(agent_id=agent.id, base_url=url, api_key=api_key, session_store=store)
        alice = {"configurable": {"session_id": "alice"}}
        reply = model.invoke("Hi, I am Alice.", config=alice)
        conversation_id = reply.response_metadata["conversation_id"]
        check(store.get(agent.id, "alice") == conversation_id, "SQLite maps alice's session")
        history = LettaChatMessageHistory(
            session_id="alice",
            agent_id=agent.id,
            base_url=url,
            api_key=api_key,
            session_store=store,
        )
        check(history.conversation_id == conversation_id, "the history finds it through SQLite")
        check(
            store.set_if_absent(agent.id, "alice", "conv-loser") == conversation_id,
            "a racing second mapping loses to the first",
        )
    return check.report()


if __name__ == "__main__":
    raise SystemExit(main())
