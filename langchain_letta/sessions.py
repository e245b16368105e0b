"""Session keys -> Letta conversations: stores, the in-process cache, the race rule.

A session key is any string an application chooses (a user id, a chat id, LangGraph's
`thread_id`). Each key maps to exactly one conversation of the agent, created on first
use. By default the mapping lives on the Letta server itself, as a tag in the
conversation's `summary`, so it survives restarts and works across processes and
replicas with nothing else to run. Apps that keep the mapping in their own database
pass a `SessionStore`.

The tag is `langchain-letta session <digest>: <key>`: the key stays readable, and the
lookup searches for the digest alone (32 hex digits), so no key can widen or break
Letta's `summary_search` (a Postgres `LIKE`) and a cold lookup is one request
whatever the other keys are. Tags of the older `langchain-letta session: <key>` form
are rewritten the first time a process misses a key of the agent.

The rules every process follows, so all of them agree:

- **Pick**: of several conversations tagged with one key, the oldest (by
  `created_at`, then id) is the session's; a warning names the others.
- **Race**: two processes creating one new key both create, list again, keep the
  oldest and delete their own empty loser. With a store, the first
  `SessionStore.set_if_absent` wins.
- **Staleness**: a warm key costs no request. Whatever reveals that its conversation
  is gone or no longer the key's (a 404, a tag that no longer names the key) drops it
  from the cache and resolves the key once more (`SessionResolver.refresh`).
- **Clear**: `SessionResolver.renew` marks the old conversation cleared, gives
  the key a new one and deletes the old one, so another replica's next turn on its
  cached id gets a 404 and follows the key to the new conversation.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import suppress
from typing import Any, TypeVar

from letta_client import AsyncLetta, Letta

from langchain_letta.clients import for_running_loop
from langchain_letta.errors import (
    LettaForeignConversationError,
    LettaInputError,
    LettaNotFoundError,
    LettaResponseError,
    gone,
    letta_errors,
)
from langchain_letta.plans import Call, Pause, Plan, arun, run
from langchain_letta.session_keys import (
    LEGACY_PREFIX,
    TAG,
    check_agent_id,
    check_conversation_id,
    check_session_id,
    cleared_tag,
    key_digest,
    migrated_summary,
    session_tag,
)
from langchain_letta.session_stores import InMemorySessionStore, JsonFileSessionStore, SessionStore
from langchain_letta.state import KEY_LOCKS, MEMORY_CHECKS, MIGRATED, OWNERS, SESSIONS

__all__ = [
    "InMemorySessionStore",
    "JsonFileSessionStore",
    "SessionResolver",
    "SessionStore",
    "check_agent_id",
    "check_conversation_id",
    "check_owner",
    "check_session_id",
    "key_digest",
    "session_tag",
]

logger = logging.getLogger(__name__)

_ANSWER = "The server's answer"
_LIST_PAGE = 100
_SETTLE_SECONDS = 0.05

T = TypeVar("T")


def bind(base_url: str, conversation_id: str, agent_id: str) -> None:
    """Remember that `conversation_id` belongs to `agent_id` (no request later)."""
    OWNERS[(base_url, conversation_id)] = agent_id


def _owner_checked(base_url: str, conversation_id: str, agent_id: str, owner: object) -> None:
    if not isinstance(owner, str):
        raise LettaResponseError(
            f"The server's answer for conversation {conversation_id} names no agent."
        )
    if owner != agent_id:
        raise LettaForeignConversationError(
            f"Conversation {conversation_id} belongs to another agent ({owner}), not to "
            f"{agent_id}; nothing was sent."
        )
    bind(base_url, conversation_id, agent_id)


def _known_owner(base_url: str, conversation_id: str) -> str | None:
    return OWNERS.get((base_url, conversation_id))


def check_owner(client: Letta, agent_id: str, conversation_id: str) -> None:
    """Refuse a conversation of another agent (one request the first time per process).

    Raises:
        LettaConversationIdError: `conversation_id` is not a `conv-...` id.
        LettaForeignConversationError: it belongs to another agent.
        LettaNotFoundError: it does not exist or was deleted.

    """
    check_conversation_id(conversation_id)
    base_url = str(client.base_url)
    known = _known_owner(base_url, conversation_id)
    if known is None:
        with letta_errors(reading=_ANSWER):
            conversation = client.conversations.retrieve(conversation_id)
        known = getattr(conversation, "agent_id", None)
    _owner_checked(base_url, conversation_id, agent_id, known)


async def acheck_owner(client: AsyncLetta, agent_id: str, conversation_id: str) -> None:
    """Async twin of `check_owner`."""
    check_conversation_id(conversation_id)
    base_url = str(client.base_url)
    known = _known_owner(base_url, conversation_id)
    if known is None:
        with letta_errors(reading=_ANSWER):
            conversation = await client.conversations.retrieve(conversation_id)
        known = getattr(conversation, "agent_id", None)
    _owner_checked(base_url, conversation_id, agent_id, known)


def _conversation_fields(conversation: object) -> tuple[str, str | None, Any]:
    """`(id, summary, created_at)` of a listed conversation, or `LettaResponseError`."""
    conversation_id = getattr(conversation, "id", None)
    summary = getattr(conversation, "summary", None)
    if not isinstance(conversation_id, str) or not (summary is None or isinstance(summary, str)):
        raise LettaResponseError(
            f"The server listed something that is not a conversation: {str(conversation)[:80]!r}."
        )
    return conversation_id, summary, getattr(conversation, "created_at", None)


# ---------------------------------------------------------------------------- the resolver


class SessionResolver:
    """Resolves session keys of one agent to conversation ids.

    A key already resolved in this process costs no request (`state.SESSIONS`, shared
    by every `ChatLetta` and history of the same server and agent). A cold key is looked
    up on the server (one request; or in `store`); a new key gets a new conversation.
    See the module docstring for the rules every process follows. Each method has an
    async twin on `async_client`; both run the same plan (`langchain_letta.plans`).

    Args:
        client: the sync letta-client.
        agent_id: the agent whose sessions these are.
        store: where the mapping lives, if not on the server.
        async_client: the async letta-client (needed by the async twins).

    """

    def __init__(
        self,
        client: Letta,
        agent_id: str,
        store: SessionStore | None = None,
        *,
        async_client: AsyncLetta | None = None,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.agent_id = check_agent_id(agent_id)
        self.store = store
        if store is not None and not callable(getattr(store, "set_if_absent", None)):
            raise LettaInputError(
                "session_store needs an atomic set_if_absent(agent_id, session_id, "
                "conversation_id) -> str (see SessionStore)."
            )

    @property
    def _base_url(self) -> str:
        return str(self.client.base_url)

    def _cache_key(self, session_id: str) -> tuple[str, str, str]:
        return (self._base_url, self.agent_id, session_id)

    def _run(self, plan: Plan[T]) -> T:
        return run(plan, self.client, reading=_ANSWER)

    async def _arun(self, plan: Plan[T]) -> T:
        if self.async_client is None:
            raise LettaInputError("This SessionResolver was built without an async client.")
        return await arun(plan, for_running_loop(self.async_client), reading=_ANSWER)

    # ------------------------------------------------------------------------ the cache

    def cached(self, session_id: str) -> str | None:
        """The conversation id of the key if this process already knows it."""
        return SESSIONS.get(self._cache_key(check_session_id(session_id)))

    def forget(self, session_id: str, conversation_id: str | None = None) -> None:
        """Drop the cached mapping of the key (only if it is `conversation_id`, if given)."""
        key = self._cache_key(session_id)
        with SESSIONS.lock:
            if conversation_id is None or SESSIONS.get(key) == conversation_id:
                SESSIONS.pop(key, None)

    def _remember(self, session_id: str, conversation_id: str) -> None:
        SESSIONS[self._cache_key(session_id)] = conversation_id
        OWNERS[(self._base_url, conversation_id)] = self.agent_id

    # ------------------------------------------------------------------------ resolve

    def resolve(self, session_id: str, *, create: bool = True) -> str | None:
        """The conversation id of `session_id`, created on first use when `create`."""
        cached = self.cached(session_id)
        if cached:
            return cached
        with KEY_LOCKS.obtain(self._cache_key(session_id), threading.Lock):
            return self._run(self._resolving(session_id, create))

    async def aresolve(self, session_id: str, *, create: bool = True) -> str | None:
        """Async twin of `resolve`."""
        cached = self.cached(session_id)
        if cached:
            return cached
        lock = KEY_LOCKS.obtain(self._cache_key(session_id), threading.Lock)
        await acquire(lock)
        try:
            return await self._arun(self._resolving(session_id, create))
        finally:
            lock.release()

    def _resolving(self, session_id: str, create: bool) -> Plan[str | None]:
        found = SESSIONS.get(self._cache_key(session_id))  # resolved while we waited
        if found is not None:
            return found
        conversation_id = yield from self._lookup(session_id)
        if conversation_id is None and create:
            conversation_id = yield from self._create(session_id)
        if conversation_id:
            self._remember(session_id, conversation_id)
        return conversation_id

    def refresh(self, session_id: str, stale_id: str, *, create: bool = True) -> str | None:
        """Resolve the key once more after `stale_id` proved stale (404, changed tag).

        Returns the key's conversation now (`None` when it has none and not `create`).
        Raises `LettaNotFoundError` when the key still names `stale_id`, which is gone.
        """
        if self._forget_stale(session_id, stale_id):
            return self._run(self._replacing(session_id, create))
        return self._still_stale(session_id, stale_id, self.resolve(session_id, create=create))

    async def arefresh(self, session_id: str, stale_id: str, *, create: bool = True) -> str | None:
        """Async twin of `refresh`."""
        if self._forget_stale(session_id, stale_id):
            return await self._arun(self._replacing(session_id, create))
        found = await self.aresolve(session_id, create=create)
        return self._still_stale(session_id, stale_id, found)

    def _forget_stale(self, session_id: str, stale_id: str) -> bool:
        """Forget `stale_id`; whether the key's store still maps it (then replace it there)."""
        self.forget(session_id, stale_id)
        OWNERS.pop((self._base_url, stale_id), None)
        return self.store is not None and self.store.get(self.agent_id, session_id) == stale_id

    def _replacing(self, session_id: str, create: bool) -> Plan[str | None]:
        if not create or self.store is None:
            return None
        fresh = yield from self._new_conversation(session_id)
        self.store.set(self.agent_id, session_id, fresh)
        self._remember(session_id, fresh)
        return fresh

    def _still_stale(self, session_id: str, stale_id: str, found: str | None) -> str | None:
        if found == stale_id:
            self.forget(session_id, stale_id)
            raise gone(
                f"Session {session_id!r} still names conversation {stale_id}, which the "
                "server does not have."
            )
        return found

    def renew(self, session_id: str) -> str:
        """Give `session_id` a fresh, empty conversation and delete its old one(s).

        The old conversations are first marked cleared (so no lookup finds them), then
        deleted once the new one is in place; another process whose cache still names
        an old one gets a 404 on its next request and resolves the key again. A key
        whose conversation was already deleted renews just the same.
        """
        return self._run(self._renewing(check_session_id(session_id)))

    async def arenew(self, session_id: str) -> str:
        """Async twin of `renew`."""
        return await self._arun(self._renewing(check_session_id(session_id)))

    def _renewing(self, session_id: str) -> Plan[str]:
        old: set[str | None] = {self.cached(session_id)}
        if self.store is not None:
            old.add(self.store.get(self.agent_id, session_id))
            new = yield from self._new_conversation(session_id)
            self.store.set(self.agent_id, session_id, new)
        else:
            tagged = yield from _tagged(self.agent_id, session_id)
            old.update(conversation_id for conversation_id, _ in tagged)
            cleared = {"summary": cleared_tag(session_id)}
            for conversation_id in old - {None}:
                yield from _unless_gone(Call("conversations.update", (conversation_id,), cleared))
            new = yield from self._create(session_id)
        self._remember(session_id, new)
        for replaced in old - {None, new}:
            if replaced is not None:
                yield from _unless_gone(Call("conversations.delete", (replaced,)))
                OWNERS.pop((self._base_url, replaced), None)
        return new

    # ------------------------------------------------------------------------ server side

    def _lookup(self, session_id: str) -> Plan[str | None]:
        if self.store is not None:
            return self.store.get(self.agent_id, session_id)
        tagged = yield from _tagged(self.agent_id, session_id)
        if not tagged and (yield from self._migrate_legacy()):
            tagged = yield from _tagged(self.agent_id, session_id)
        return _oldest(self.agent_id, session_id, tagged)

    def _migrate_legacy(self) -> Plan[bool]:
        """Rewrite the agent's tags of the older format once per process; True if any."""
        swept = (self._base_url, self.agent_id)
        if swept in MIGRATED:
            return False
        rewritten = 0
        for conversation_id, summary, _ in (yield from _listed(self.agent_id, LEGACY_PREFIX)):
            new_summary = migrated_summary(summary or "")
            if new_summary is not None:
                yield from _unless_gone(
                    Call("conversations.update", (conversation_id,), {"summary": new_summary})
                )
                rewritten += 1
        MIGRATED[swept] = True
        if rewritten:
            logger.info("Rewrote %d session tags of agent %s.", rewritten, self.agent_id)
        return rewritten > 0

    def _new_conversation(self, session_id: str) -> Plan[str]:
        created = yield Call(  # never re-POSTed: a create that timed out may have happened
            "conversations.create",
            kwargs={"agent_id": self.agent_id, "summary": session_tag(session_id)},
            retry=False,
        )
        conversation_id = _conversation_fields(created)[0]
        MEMORY_CHECKS.created(self.agent_id, conversation_id)
        return conversation_id

    def _create(self, session_id: str) -> Plan[str]:
        mine = yield from self._new_conversation(session_id)
        if self.store is not None:
            winner = self.store.set_if_absent(self.agent_id, session_id, mine)
        else:
            winner = yield from self._winner(session_id, mine)
            if winner == mine:
                # A rival created just before us may not be visible yet: look once more.
                yield Pause(_SETTLE_SECONDS)
                winner = yield from self._winner(session_id, mine)
        if winner != mine:
            yield from _unless_gone(Call("conversations.delete", (mine,)))
        return winner

    def _winner(self, session_id: str, mine: str) -> Plan[str]:
        """The oldest conversation tagged with the key (`mine` if the list lags)."""
        tagged = yield from _tagged(self.agent_id, session_id)
        return tagged[0][0] if tagged else mine


def _oldest(agent_id: str, session_id: str, tagged: list[tuple[str, Any]]) -> str | None:
    """The oldest tagged conversation; a warning when the key tags several."""
    if not tagged:
        return None
    if len(tagged) > 1:
        logger.warning(
            "Session key %r of agent %s tags %d conversations (%s); using the oldest, "
            "%s, as every process does. Remove the tag from the others.",
            session_id,
            agent_id,
            len(tagged),
            ", ".join(conversation_id for conversation_id, _ in tagged),
            tagged[0][0],
        )
    return tagged[0][0]


def _listed(agent_id: str, search: str) -> Plan[list[tuple[str, str | None, Any]]]:
    """`(id, summary, created_at)` of conversations whose summary holds `search`."""
    listed: list[tuple[str, str | None, Any]] = []
    after: str | None = None
    while True:
        page = yield Call(
            "conversations.list",
            kwargs={
                "agent_id": agent_id,
                "summary_search": search,
                "order": "asc",
                "order_by": "created_at",
                "limit": _LIST_PAGE,
                "after": after,
            },
        )
        if not isinstance(page, list):
            raise LettaResponseError(
                f"The server answered a conversation listing with {str(page)[:80]!r}."
            )
        fields = [_conversation_fields(conversation) for conversation in page]
        listed += fields
        if len(page) < _LIST_PAGE:
            return listed
        after = fields[-1][0]


def _tagged(agent_id: str, session_id: str) -> Plan[list[tuple[str, Any]]]:
    """`(id, created_at)` of the conversations tagged exactly with the key, oldest first."""
    tag = session_tag(session_id)
    listed = yield from _listed(agent_id, f"{TAG} {key_digest(session_id)}")
    found = [(cid, created_at) for cid, summary, created_at in listed if summary == tag]
    return sorted(found, key=lambda pair: (_timestamp(pair[1]), pair[0]))


def _unless_gone(call: Call) -> Plan[None]:
    """Make `call`; a conversation already gone (404) is no failure."""
    with suppress(LettaNotFoundError):
        yield call


async def acquire(lock: threading.Lock) -> None:
    """Take `lock` without blocking the event loop (it waits in short sleeps)."""
    pause = 0.001
    while not lock.acquire(blocking=False):
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


def _timestamp(created_at: Any) -> float:
    return float(created_at.timestamp()) if hasattr(created_at, "timestamp") else 0.0
