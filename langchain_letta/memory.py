"""Keeping each conversation's system prompt in step with the agent's shared memory.

Letta compiles the agent's memory blocks into a conversation's system prompt when the
conversation is created and keeps that snapshot (Letta's own clients rely on it for
prompt caching) until the conversation is recompiled. All sessions share the blocks, so
a block the agent edits in one session would stay invisible to the others.

This module decides, before a turn, whether the conversation's prompt may be behind the
blocks, and if so reads the blocks (one request) and recompiles only when they changed.
When a check is due depends on the mode:

- ``"auto"``: at a conversation's first turn in this process, and after any turn of the
  agent in this process that ran a server-side tool (memory tools are how an agent edits
  its blocks). A warm session costs no extra request until memory may have changed.
- ``"always"``: before every turn, so edits made anywhere (another process, the ADE, the
  API) are seen at once, for one light request per turn.
- ``"never"``: each conversation keeps the blocks it was compiled with, as Letta does.
"""

from __future__ import annotations

import threading
from typing import Any, Literal, get_args

from letta_client import AsyncLetta, Letta

from langchain_letta.errors import LettaInputError

__all__ = ["SyncMemory", "async_sync_memory", "check_mode", "observe_tools", "sync_memory"]

SyncMemory = Literal["auto", "always", "never"]

_MODES: tuple[str, ...] = get_args(SyncMemory)
_REMEMBERED = 100_000  # conversations whose compiled blocks this process keeps track of
_TOOL_EVENTS = frozenset({"tool_call_message", "tool_return_message"})


def check_mode(mode: object) -> SyncMemory:
    """``mode`` if it is a memory-sync mode, else a clear ``LettaInputError``."""
    if mode not in _MODES:
        raise LettaInputError(f"sync_memory must be one of {', '.join(_MODES)}; got {mode!r}.")
    return mode  # type: ignore[return-value]


class _Ledger:
    """What this process knows of the agents' memory.

    Per agent, a generation that rises whenever a turn may have edited its blocks; per
    conversation, the generation it was last checked at and the blocks its prompt was
    compiled from (``None``: compiled elsewhere, not compared yet).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._generation: dict[str, int] = {}
        self._checked: dict[str, tuple[int, int | None]] = {}

    def due(self, mode: SyncMemory, agent_id: str, conversation_id: str) -> int | None:
        """The agent's generation if the conversation needs a check now, else ``None``."""
        with self._guard:
            generation = self._generation.get(agent_id, 0)
            checked = self._checked.get(conversation_id)
        if mode == "never" or (mode == "auto" and checked and checked[0] == generation):
            return None
        return generation

    def compiled_from_unknown(self, conversation_id: str) -> bool:
        """Whether the conversation's prompt must be read to learn which blocks it holds."""
        with self._guard:
            checked = self._checked.get(conversation_id)
        return checked is None or checked[1] is None

    def stale(self, conversation_id: str, blocks: list[Any], prompt: str | None) -> bool:
        """Whether the prompt is behind ``blocks`` (read from ``prompt`` when not known)."""
        with self._guard:
            checked = self._checked.get(conversation_id)
        if checked is not None and checked[1] is not None:
            return checked[1] != _fingerprint(blocks)
        # Letta's own rule for a rebuild: the current memory is not in the prompt text.
        return prompt is None or any(str(block.value) not in prompt for block in blocks)

    def checked(self, conversation_id: str, generation: int, blocks: list[Any] | None) -> None:
        """Record a check (or a fresh conversation, ``blocks=None``) at ``generation``."""
        fingerprint = None if blocks is None else _fingerprint(blocks)
        with self._guard:
            self._checked.pop(conversation_id, None)
            self._checked[conversation_id] = (generation, fingerprint)
            if len(self._checked) > _REMEMBERED:
                self._checked.pop(next(iter(self._checked)))

    def created(self, agent_id: str, conversation_id: str) -> None:
        """A conversation just created holds the current blocks: nothing to check yet."""
        with self._guard:
            generation = self._generation.get(agent_id, 0)
        self.checked(conversation_id, generation, None)

    def touched(self, agent_id: str) -> None:
        """A turn of the agent ran a tool: every conversation's prompt may be behind."""
        with self._guard:
            self._generation[agent_id] = self._generation.get(agent_id, 0) + 1


LEDGER = _Ledger()


def observe_tools(agent_id: str, event: Any) -> Any:
    """Pass ``event`` through, noting a server-side tool run as a possible memory edit."""
    if getattr(event, "message_type", None) in _TOOL_EVENTS:
        LEDGER.touched(agent_id)
    return event


def sync_memory(client: Letta, mode: SyncMemory, agent_id: str, conversation_id: str) -> None:
    """Recompile the conversation's prompt if the agent's blocks changed (see the module)."""
    generation = LEDGER.due(mode, agent_id, conversation_id)
    if generation is None:
        return
    blocks = client.agents.retrieve(agent_id, include=["agent.blocks"]).blocks
    prompt = None
    if LEDGER.compiled_from_unknown(conversation_id):
        prompt = _prompt(client.conversations.messages.list(conversation_id, limit=1, order="asc"))
    if LEDGER.stale(conversation_id, blocks, prompt):
        client.conversations.recompile(conversation_id)
    LEDGER.checked(conversation_id, generation, blocks)


async def async_sync_memory(
    client: AsyncLetta, mode: SyncMemory, agent_id: str, conversation_id: str
) -> None:
    """Async twin of :func:`sync_memory`."""
    generation = LEDGER.due(mode, agent_id, conversation_id)
    if generation is None:
        return
    blocks = (await client.agents.retrieve(agent_id, include=["agent.blocks"])).blocks
    prompt = None
    if LEDGER.compiled_from_unknown(conversation_id):
        page = await client.conversations.messages.list(conversation_id, limit=1, order="asc")
        prompt = _prompt(page)
    if LEDGER.stale(conversation_id, blocks, prompt):
        await client.conversations.recompile(conversation_id)
    LEDGER.checked(conversation_id, generation, blocks)


def _fingerprint(blocks: list[Any]) -> int:
    return hash(tuple(sorted((str(block.label), str(block.value)) for block in blocks)))


def _prompt(page: Any) -> str | None:
    """The text of the conversation's system message, if the page starts with it."""
    items = list(getattr(page, "items", page))
    if not items or getattr(items[0], "message_type", None) != "system_message":
        return None
    content = items[0].content
    return content if isinstance(content, str) else None
