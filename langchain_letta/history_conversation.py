"""Which Letta conversation a `LettaChatMessageHistory` stands for.

A history names its conversation by a session key or by a `conv-...` id.
`HistoryConversation` turns that name into the conversation, as every history and
model of the process agree on it (`sessions.SessionResolver`):

- a **session key** costs no request once this process knows it, follows the key when
  another history or model of the process moved it, and never creates a conversation
  (`ChatLetta` does, on the session's first turn);
- a **`conv-...` id** is checked once per process to belong to the agent;
- a conversation found **gone** while reading is followed once through its session
  (cleared by another process), else `LettaNotFoundError`;
- **clearing** starts the history on a fresh, empty conversation.
"""

from __future__ import annotations

from langchain_letta.conversation import Conversations
from langchain_letta.errors import LettaInputError, gone, letta_errors
from langchain_letta.sessions import (
    SessionResolver,
    SessionStore,
    acheck_owner,
    bind,
    check_agent_id,
    check_conversation_id,
    check_owner,
    check_session_id,
)
from langchain_letta.state import MEMORY_CHECKS

__all__ = ["HistoryConversation", "check_names"]


def check_names(session_id: str | None, conversation_id: str | None, agent_id: str) -> None:
    """Refuse a history that names no conversation, or names one badly (no I/O)."""
    if session_id is None and conversation_id is None:
        raise LettaInputError("Give a session_id or a conversation_id.")
    if session_id is not None:
        check_session_id(session_id)
    if conversation_id is not None:
        check_conversation_id(conversation_id)
    check_agent_id(agent_id)


class HistoryConversation:
    """The conversation of one history: resolved, checked, followed and renewed.

    Args:
        conversations: the history's letta-clients.
        agent_id: the history's agent.
        session_id: the session key, if the history names one.
        conversation_id: the `conv-...` id given instead of a key, if any.
        session_store: where the agent's session keys map to conversations, if not on
            the server.

    """

    def __init__(
        self,
        conversations: Conversations,
        agent_id: str,
        session_id: str | None,
        conversation_id: str | None,
        session_store: SessionStore | None,
    ) -> None:
        self._conversations = conversations
        self._resolver = SessionResolver(
            conversations.client,
            agent_id,
            session_store,
            async_client=conversations.given_async_client,
        )
        self.agent_id = agent_id
        self.session_id = session_id
        self.id = conversation_id
        self._owner_checked = False

    def current(self) -> str | None:
        """The conversation now (`None` for a session not created yet)."""
        if self.session_id is not None:
            cached = self._resolver.cached(self.session_id)
            if cached is not None:  # another history or model may have moved the session
                self.id = cached
            elif self.id is None:
                self.id = self._resolver.resolve(self.session_id, create=False)
        elif self.id is not None and not self._owner_checked:
            check_owner(self._conversations.client, self.agent_id, self.id)
            self._owner_checked = True
        return self.id

    async def acurrent(self) -> str | None:
        """Async twin of `current`."""
        if self.session_id is not None:
            cached = self._resolver.cached(self.session_id)
            if cached is not None:
                self.id = cached
            elif self.id is None:
                self.id = await self._resolver.aresolve(self.session_id, create=False)
        elif self.id is not None and not self._owner_checked:
            await acheck_owner(self._conversations.async_client, self.agent_id, self.id)
            self._owner_checked = True
        return self.id

    def follow(self, gone_id: str, error: BaseException) -> None:
        """`gone_id` is gone: follow the session once, else raise `LettaNotFoundError`."""
        self.id = self._resolver.refresh(self._session(gone_id, error), gone_id, create=False)

    async def afollow(self, gone_id: str, error: BaseException) -> None:
        """Async twin of `follow`."""
        session_id = self._session(gone_id, error)
        self.id = await self._resolver.arefresh(session_id, gone_id, create=False)

    def _session(self, gone_id: str, error: BaseException) -> str:
        if self.session_id is None:
            raise gone(f"Conversation {gone_id} was deleted.") from error
        return self.session_id

    def renew(self) -> None:
        """Move to a fresh, empty conversation; a session's old one is deleted."""
        if self.session_id is not None:
            self._use(self._resolver.renew(self.session_id))
            return
        with letta_errors():
            created = self._conversations.client.conversations.create(agent_id=self.agent_id)
        self._use(self._bound(created.id))

    async def arenew(self) -> None:
        """Async twin of `renew`."""
        if self.session_id is not None:
            self._use(await self._resolver.arenew(self.session_id))
            return
        client = self._conversations.async_client
        with letta_errors():
            created = await client.conversations.create(agent_id=self.agent_id)
        self._use(self._bound(created.id))

    def _bound(self, conversation_id: str) -> str:
        """A conversation just created here: its blocks are current, it is the agent's."""
        MEMORY_CHECKS.created(self.agent_id, conversation_id)
        bind(str(self._conversations.client.base_url), conversation_id, self.agent_id)
        return str(conversation_id)

    def _use(self, conversation_id: str) -> None:
        self.id = conversation_id
        self._owner_checked = True
