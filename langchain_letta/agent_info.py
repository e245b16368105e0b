"""What a model knows of its agent: its model handle and context window, read once.

The agent is read at a model's first turn (one request, which brings the memory
blocks along for that turn's memory check); after that it costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_letta.conversation import BLOCKS, Conversations
from langchain_letta.errors import LettaInputTooLargeError, translate_error
from langchain_letta.sizes import estimate_payload_tokens

__all__ = ["AgentInfo"]


class AgentInfo:
    """The agent's model handle and context window, once read."""

    def __init__(self, conversations: Conversations, agent_id: str) -> None:
        self._conversations = conversations
        self.agent_id = agent_id
        self.known = False
        self.model: str | None = None
        """The agent's model handle, once read."""
        self.context_window: int | None = None
        """The agent's context window in tokens, once read (`None`: unknown)."""

    def read(self) -> list[Any] | None:
        """Read the agent at the first turn; its memory blocks (else `None`: not read)."""
        if self.known:
            return None
        try:
            agent = self._conversations.client.agents.retrieve(self.agent_id, include=BLOCKS)
        except Exception as error:
            raise translate_error(error) from error
        self.note(agent)
        return list(agent.blocks) if agent.blocks is not None else None

    async def aread(self) -> list[Any] | None:
        """Async twin of `read`."""
        if self.known:
            return None
        try:
            client = self._conversations.async_client
            agent = await client.agents.retrieve(self.agent_id, include=BLOCKS)
        except Exception as error:
            raise translate_error(error) from error
        self.note(agent)
        return list(agent.blocks) if agent.blocks is not None else None

    def note(self, agent: Any) -> None:
        """Keep what a turn needs to know of `agent`: its model and context window."""
        llm_config = getattr(agent, "llm_config", None)
        self.model = str(
            getattr(agent, "model", None)
            or getattr(llm_config, "handle", None)
            or getattr(llm_config, "model", None)
            or "letta"
        )
        window = getattr(llm_config, "context_window", None)
        self.context_window = window if isinstance(window, int) else None
        self.known = True

    def check_size(self, payloads: Sequence[dict[str, Any]]) -> None:
        """Refuse input that cannot fit the agent's context window, before anything is sent."""
        if self.context_window is None:
            return
        estimate = estimate_payload_tokens(payloads)
        if estimate > self.context_window:
            raise LettaInputTooLargeError(
                f"The input is about {estimate} tokens; the agent's context window holds "
                f"{self.context_window}. Nothing was sent."
            )
