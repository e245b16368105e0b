"""Letta conversations over letta-client: the clients, pages of messages, memory checks.

`Conversations` holds the sync and async letta-clients a model or history talks
through (sends go through copies with the SDK's retries off), reads pages of a
conversation's stored messages, and brings a conversation's prompt in step with the
agent's memory blocks. Sending a turn is `langchain_letta.turn_stream`.
"""

from __future__ import annotations

from typing import Any, Literal

from letta_client import AsyncLetta, Letta

from langchain_letta.clients import for_running_loop, shared_clients
from langchain_letta.connection import Endpoint
from langchain_letta.errors import letta_errors
from langchain_letta.memory import SyncMemory, behind, memory_blocks, system_prompt
from langchain_letta.paging import MessageListing
from langchain_letta.state import MEMORY_CHECKS

__all__ = ["BLOCKS", "Conversations", "Order"]

Order = Literal["asc", "desc"]

BLOCKS: list[Any] = ["agent.blocks"]  # an agent read that carries only its memory blocks
_AGENT_READ = "The server's agent read"


class Conversations:
    """The letta-clients of a model or history, and the conversation reads they make.

    Args:
        client: the sync letta-client.
        async_client: the async letta-client (one built by the package has a copy per
            event loop, so a model outlives `asyncio.run()`).
        busy_timeout: seconds any wait of a turn may last (a busy conversation, the
            lock of another turn here, a run being recovered) before it gives up.

    """

    def __init__(self, client: Letta, async_client: AsyncLetta, busy_timeout: float) -> None:
        self._send_client = client.with_options(max_retries=0)
        self.client = client
        self._async_client = async_client
        self.listing = MessageListing(client, async_client)
        """The conversations' stored messages, by position and by creation."""
        self.busy_timeout = busy_timeout

    @classmethod
    def connect(
        cls,
        endpoint: Endpoint,
        *,
        timeout: float | None,
        max_retries: int,
        busy_timeout: float,
        client: Letta | None = None,
        async_client: AsyncLetta | None = None,
    ) -> Conversations:
        """Conversations over `client` and `async_client`, from the shared pool when not given.

        See `langchain_letta.clients`: models and histories with the same settings share
        letta-clients; the missing twin of a given client is derived from it.
        """
        client, async_client = shared_clients(
            endpoint,
            timeout=timeout,
            max_retries=max_retries,
            client=client,
            async_client=async_client,
        )
        return cls(client, async_client, busy_timeout)

    @property
    def given_async_client(self) -> AsyncLetta:
        """The async letta-client given or built (not a copy for another event loop)."""
        return self._async_client

    @property
    def async_client(self) -> AsyncLetta:
        """The async letta-client for the running event loop."""
        return for_running_loop(self._async_client)

    @property
    def send_client(self) -> Letta:
        """The sync letta-client for sends: its automatic retries are off."""
        return self._send_client

    @property
    def async_send_client(self) -> AsyncLetta:
        """The async letta-client for sends, for the running event loop: no retries."""
        return self.async_client.with_options(max_retries=0)

    def read_blocks(self, agent_id: str) -> list[Any]:
        """The agent's memory blocks as they are now (one light agent read)."""
        with letta_errors(reading=_AGENT_READ):
            response = self.client.agents.with_raw_response.retrieve(agent_id, include=BLOCKS)
            agent = response.json()
        return memory_blocks(agent)

    async def aread_blocks(self, agent_id: str) -> list[Any]:
        """Async twin of `read_blocks`."""
        with letta_errors(reading=_AGENT_READ):
            retrieve = self.async_client.agents.with_raw_response.retrieve
            response = await retrieve(agent_id, include=BLOCKS)
            agent = await response.json()
        return memory_blocks(agent)

    def sync_memory(
        self,
        mode: SyncMemory,
        agent_id: str,
        conversation_id: str,
        fresh_blocks: list[Any] | None = None,
    ) -> bool:
        """Recompile the conversation's prompt if it lags the agent's memory blocks.

        Only when `mode` says a check is due (see `langchain_letta.memory`).
        Whether it recompiled.
        """
        generation = MEMORY_CHECKS.due(mode, agent_id, conversation_id)
        if generation is None:
            return False
        blocks = fresh_blocks if fresh_blocks is not None else self.read_blocks(agent_id)
        known = MEMORY_CHECKS.known_blocks(conversation_id)
        prompt = None
        if known is None:  # compiled elsewhere: read the blocks from its prompt
            prompt = system_prompt(self.listing.page(conversation_id, order="asc", limit=1))
        recompile = behind(known, blocks, prompt)
        if recompile:
            self.client.conversations.recompile(conversation_id)
        MEMORY_CHECKS.checked(conversation_id, generation, blocks)
        return recompile

    async def async_sync_memory(
        self,
        mode: SyncMemory,
        agent_id: str,
        conversation_id: str,
        fresh_blocks: list[Any] | None = None,
    ) -> bool:
        """Async twin of `sync_memory`."""
        generation = MEMORY_CHECKS.due(mode, agent_id, conversation_id)
        if generation is None:
            return False
        blocks = fresh_blocks if fresh_blocks is not None else await self.aread_blocks(agent_id)
        known = MEMORY_CHECKS.known_blocks(conversation_id)
        prompt = None
        if known is None:
            prompt = system_prompt(await self.listing.apage(conversation_id, order="asc", limit=1))
        recompile = behind(known, blocks, prompt)
        if recompile:
            await self.async_client.conversations.recompile(conversation_id)
        MEMORY_CHECKS.checked(conversation_id, generation, blocks)
        return recompile
