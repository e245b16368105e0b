"""Session keys and Letta ids: what is a valid one, and the tags that name a session.

A session's conversation carries the tag `langchain-letta session <digest>: <key>` in its
`summary`; the lookup searches for the digest alone (32 hex digits), so no key can widen
or break Letta's `summary_search` (a Postgres `LIKE`).
"""

from __future__ import annotations

import hashlib
import re

from langchain_letta.errors import LettaConversationIdError, LettaInputError

__all__ = [
    "LEGACY_PREFIX",
    "TAG",
    "check_agent_id",
    "check_conversation_id",
    "check_session_id",
    "cleared_tag",
    "key_digest",
    "migrated_summary",
    "session_tag",
]

TAG = "langchain-letta session"

_CLEARED = "langchain-letta cleared"

LEGACY_PREFIX = "langchain-letta session: "

_LEGACY_CLEARED = f"(cleared) {LEGACY_PREFIX}"

_MAX_KEY_LENGTH = 512

_ID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

_CONVERSATION_ID = re.compile(f"conv-{_ID}")

_AGENT_ID = re.compile(r"agent-[A-Za-z0-9_-]+")


def key_digest(session_id: str) -> str:
    """The 32 hex digits that stand for `session_id` in lookups."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


def session_tag(session_id: str) -> str:
    """The `summary` text that marks a conversation as the one of `session_id`."""
    return f"{TAG} {key_digest(session_id)}: {session_id}"


def cleared_tag(session_id: str) -> str:
    """The `summary` of a conversation that `clear()` took away from `session_id`."""
    return f"{_CLEARED} {key_digest(session_id)}: {session_id}"


def check_session_id(session_id: object) -> str:
    """`session_id` if it is a usable session key, else a clear `LettaInputError`."""
    if not isinstance(session_id, str):
        raise LettaInputError(f"A session key must be a string, not {type(session_id).__name__}.")
    if (
        not session_id.strip()
        or len(session_id) > _MAX_KEY_LENGTH
        or "\n" in session_id
        or "\r" in session_id
    ):
        raise LettaInputError(
            f"A session key must be a non-empty single line of at most {_MAX_KEY_LENGTH} "
            f"characters; got {session_id[:40]!r}."
        )
    if "\x00" in session_id:
        raise LettaInputError("A session key must not contain NUL characters.")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        raise LettaInputError("A session key must be valid Unicode text.") from None
    return session_id


def check_agent_id(agent_id: object) -> str:
    """`agent_id` if it looks like a Letta agent id (`agent-...`), else an error."""
    if not isinstance(agent_id, str) or not _AGENT_ID.fullmatch(agent_id):
        shown = agent_id[:60] if isinstance(agent_id, str) else type(agent_id).__name__
        raise LettaInputError(f"agent_id must be a Letta agent id ('agent-...'); got {shown!r}.")
    return agent_id


def check_conversation_id(conversation_id: object, *, where: str = "conversation_id") -> str:
    """`conversation_id` if it is a Letta conversation id (`conv-<uuid>`), else an error.

    The error names the usual mix-up: an application's own key given where a Letta id
    belongs (LangChain's `RunnableWithMessageHistory` examples use
    `conversation_id="1"`); such keys are session keys.
    """
    if isinstance(conversation_id, str) and _CONVERSATION_ID.fullmatch(conversation_id):
        return conversation_id
    shown = conversation_id[:60] if isinstance(conversation_id, str) else conversation_id
    raise LettaConversationIdError(
        f"{where}={shown!r} is not a Letta conversation id ('conv-<uuid>'). To key a "
        "thread by your own id, pass it as session_id (configurable.session_id, or "
        "thread_id in LangGraph); it then names one conversation of the agent."
    )


def migrated_summary(summary: str) -> str | None:
    """The current-format tag for a tag of the older format (`None`: not one)."""
    for prefix, make in ((LEGACY_PREFIX, session_tag), (_LEGACY_CLEARED, cleared_tag)):
        if summary.startswith(prefix):
            key = summary[len(prefix) :]
            try:
                return make(check_session_id(key))
            except LettaInputError:
                return None
    return None
