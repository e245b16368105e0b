"""Helper calls that stay out of the user's thread: one throwaway conversation per call.

A call that is not the user's turn (a summary, a classification, a middleware's own
prompt) would otherwise land in the user's conversation: inside a graph every call
inherits the run's `thread_id`. `ChatLetta(..., auxiliary=True)` runs each call in a
conversation of its own, created for it and deleted after it, whatever the config says.
The agent's memory blocks and tools are still shared (its memory tools can write them).
"""

from __future__ import annotations

import contextlib

from letta_client import AsyncLetta, Letta

from langchain_letta.errors import letta_errors

__all__ = ["adiscard", "athrowaway", "discard", "throwaway"]


def throwaway(client: Letta, agent_id: str) -> str:
    """A new conversation for one helper call."""
    with letta_errors():
        return str(client.conversations.create(agent_id=agent_id).id)


async def athrowaway(client: AsyncLetta, agent_id: str) -> str:
    """Async twin of `throwaway`."""
    with letta_errors():
        return str((await client.conversations.create(agent_id=agent_id)).id)


def discard(client: Letta, conversation_id: str) -> None:
    """Delete a helper call's conversation (best effort: the call's result stands)."""
    with contextlib.suppress(Exception):
        client.conversations.delete(conversation_id)


async def adiscard(client: AsyncLetta, conversation_id: str) -> None:
    """Async twin of `discard`."""
    with contextlib.suppress(Exception):
        await client.conversations.delete(conversation_id)
