"""Where a turn goes: the conversation a call names, a new one, a throwaway or a branch.

- A `conv-...` id is checked to belong to the agent; a session key is resolved
  (`langchain_letta.sessions`); with neither, a new conversation is made.
- An auxiliary model's call (middleware, summaries) runs in a throwaway
  conversation, deleted after it (`langchain_letta.auxiliary`).
- Time travel: an input that diverges from its conversation continues in a branch
  of it (`langchain_letta.forks`).
- A session whose conversation is gone (cleared in another process) is followed
  once to its new conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage

from langchain_letta.auxiliary import adiscard, athrowaway, discard, throwaway
from langchain_letta.conversation import Conversations
from langchain_letta.errors import translate_error
from langchain_letta.forks import Branches
from langchain_letta.messages import anchor_conversation
from langchain_letta.sessions import (
    SessionResolver,
    acheck_owner,
    bind,
    check_conversation_id,
    check_owner,
    check_session_id,
)
from langchain_letta.state import MEMORY_CHECKS

__all__ = ["Placed", "Placement"]


@dataclass
class Placed:
    """Where one turn goes, and the input as that conversation sees it."""

    conversation_id: str
    session_id: str | None
    messages: list[BaseMessage]
    throwaway: bool = False


class Placement:
    """Picks, makes and follows the conversation of each turn of one model, sync and async.

    Args:
        conversations: the model's clients.
        agent_id: the model's agent.
        resolver: the model's session keys.
        fixed: the conversation id and session key fixed on the model, if any.
        auxiliary: every turn runs in a throwaway conversation.

    """

    def __init__(
        self,
        conversations: Conversations,
        agent_id: str,
        resolver: SessionResolver,
        fixed: tuple[str | None, str | None],
        auxiliary: bool,
    ) -> None:
        self._conversations = conversations
        self._agent_id = agent_id
        self.resolver = resolver
        self._fixed = fixed
        self._auxiliary = auxiliary
        async_client = conversations.given_async_client
        self._branches = Branches(conversations.client, agent_id, async_client)

    def place(self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]) -> Placed:
        """The conversation of a turn routed by `route` with input `messages`."""
        client = self._conversations.client
        if self._auxiliary:
            return Placed(throwaway(client, self._agent_id), None, list(messages), True)
        conversation_id, session_id = self._choose(route, messages)
        if conversation_id:
            check_owner(client, self._agent_id, conversation_id)
        elif session_id:
            conversation_id = str(self.resolver.resolve(session_id))
        else:
            conversation_id = self._create()
        # time travel: a diverging input continues in a branch (langchain_letta.forks)
        conversation_id, placed = self._branches.place(conversation_id, messages)
        return Placed(conversation_id, session_id, placed)

    async def aplace(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> Placed:
        """Async twin of `place`."""
        client = self._conversations.async_client
        if self._auxiliary:
            return Placed(await athrowaway(client, self._agent_id), None, list(messages), True)
        conversation_id, session_id = self._choose(route, messages)
        if conversation_id:
            await acheck_owner(client, self._agent_id, conversation_id)
        elif session_id:
            cached = self.resolver.cached(session_id)
            conversation_id = str(cached or await self.resolver.aresolve(session_id))
        else:
            conversation_id = await self._acreate()
        # time travel: a diverging input continues in a branch (langchain_letta.forks)
        conversation_id, placed = await self._branches.aplace(conversation_id, messages)
        return Placed(conversation_id, session_id, placed)

    def release(self, placed: Placed) -> None:
        """Delete a throwaway conversation once its turn is over."""
        if placed.throwaway:
            discard(self._conversations.client, placed.conversation_id)

    async def arelease(self, placed: Placed) -> None:
        """Async twin of `release`."""
        if placed.throwaway:
            await adiscard(self._conversations.async_client, placed.conversation_id)

    def may_follow(self, placed: Placed, too_late: bool) -> bool:
        """Whether a 404 on a turn may be cured by following its session once more.

        A session's cached conversation that is gone (`clear()` in another process
        deletes it) is resolved again, and the turn, which the 404 kept from being
        stored, is sent to the session's conversation now; once only, and only
        before anything of the turn streamed. Otherwise the cache entry is dropped.
        """
        if placed.session_id and too_late:
            self.resolver.forget(placed.session_id, placed.conversation_id)
        return bool(placed.session_id) and not too_late

    def follow(self, placed: Placed) -> None:
        """Resolve the session of `placed` again, to the conversation it moved to."""
        self.resolver.refresh(str(placed.session_id), placed.conversation_id)

    async def afollow(self, placed: Placed) -> None:
        """Async twin of `follow`."""
        await self.resolver.arefresh(str(placed.session_id), placed.conversation_id)

    def _choose(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> tuple[str | None, str | None]:
        """(conversation id, session key): at most one is set; both `None` means new."""
        kind, value = route or (None, None)
        if kind == "conversation_id":
            return check_conversation_id(value, where="configurable.conversation_id"), None
        if kind in {"session_id", "thread_id"}:
            return None, check_session_id(value)
        conversation_id, session_id = self._fixed
        if conversation_id:
            return conversation_id, None
        if session_id:
            return None, check_session_id(session_id)
        return anchor_conversation(messages), None

    def _create(self) -> str:
        try:
            client = self._conversations.client.with_options(max_retries=0)
            created = client.conversations.create(agent_id=self._agent_id)
        except Exception as error:
            raise translate_error(error) from error
        return self._created(str(created.id))

    async def _acreate(self) -> str:
        try:
            client = self._conversations.async_client.with_options(max_retries=0)
            created = await client.conversations.create(agent_id=self._agent_id)
        except Exception as error:
            raise translate_error(error) from error
        return self._created(str(created.id))

    def _created(self, conversation_id: str) -> str:
        MEMORY_CHECKS.created(self._agent_id, conversation_id)
        bind(str(self._conversations.client.base_url), conversation_id, self._agent_id)
        return conversation_id
