"""Keeping each conversation's system prompt in step with the agent's shared memory.

Letta compiles the agent's memory blocks into a conversation's system prompt when the
conversation is created and keeps that snapshot (Letta's own clients rely on it for
prompt caching) until the conversation is recompiled. All sessions share the blocks, so
a block the agent edits in one session would stay invisible to the others.

This module holds the rules: when a conversation's prompt is due a check against the
blocks, and whether it lags them (`Conversations` does the reading and the recompile,
only when the blocks differ: a recompile rewrites the prompt and so busts the LLM
provider's prompt cache). When a check is due depends on the mode:

- `"always"` (the default, exact): before every turn, so a block edit committed before
  a turn starts is in that turn's prompt, whoever made it (the agent's tools in any
  process or replica, the API, the ADE): one light request per turn (an agent read that
  carries only its blocks).
- `<seconds>` (bounded staleness): at most that often per session, and after any turn
  of the agent in this process that ran a server-side tool.
- `"process"` (process-local): at a conversation's first turn in this process, and
  after any turn of the agent in this process that ran a server-side tool (memory tools
  are how an agent edits its blocks). Edits made elsewhere (another worker process, the
  API) reach a running session only when it restarts. `"auto"` is its former name.
- `"never"`: each conversation keeps the blocks it was compiled with, as Letta does.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Literal, get_args

from langchain_letta.errors import LettaInputError, LettaResponseError
from langchain_letta.lru import LRU

__all__ = [
    "MemoryChecks",
    "SyncMemory",
    "behind",
    "check_mode",
    "fingerprint",
    "system_prompt",
]

SyncMode = Literal["always", "process", "auto", "never"]
SyncMemory = SyncMode | float
"""A memory-sync mode: `"always"`, seconds of staleness allowed, `"process"`, `"never"`."""

_MODES: tuple[str, ...] = get_args(SyncMode)
_TOOL_EVENTS = frozenset({"tool_call_message", "tool_return_message"})


def check_mode(mode: object) -> SyncMemory:
    """`mode` if it is a memory-sync mode, else a clear `LettaInputError`."""
    if isinstance(mode, (int, float)) and not isinstance(mode, bool):
        if mode > 0:
            return float(mode)
        raise LettaInputError(f"sync_memory as seconds must be more than 0; got {mode!r}.")
    if mode == "auto":
        return "process"
    if mode not in _MODES:
        raise LettaInputError(
            "sync_memory must be one of always, process, never or a number of seconds; "
            f"got {mode!r}."
        )
    return mode  # type: ignore[return-value]


class MemoryChecks:
    """What this process knows of the agents' memory.

    Per agent, a generation that rises whenever a turn may have edited its blocks; per
    conversation, the generation it was last checked at and the blocks its prompt was
    compiled from (`None`: compiled elsewhere, not compared yet).

    Args:
        agents: how many agents' generations to keep.
        conversations: how many conversations' checks to keep.

    """

    def __init__(self, *, agents: int, conversations: int) -> None:
        self._generation: LRU[str, int] = LRU(agents)
        self._checked: LRU[str, tuple[int, int | None, float]] = LRU(conversations)
        self._every_turn: LRU[str, bool] = LRU(conversations)
        self._created: LRU[str, bool] = LRU(conversations)

    def due(self, mode: SyncMemory, agent_id: str, conversation_id: str) -> int | None:
        """The agent's generation if the conversation needs a check now, else `None`."""
        generation = self._generation.get(agent_id, 0)
        checked = self._checked.get(conversation_id)
        if mode == "never":
            return None
        if mode == "always" or checked is None or checked[0] != generation:
            return generation
        if isinstance(mode, float) and time.monotonic() - checked[2] >= mode:
            return generation
        return None

    def turn_mode(self, conversation_id: str, mode: SyncMemory) -> None:
        """Record the mode of a turn on the conversation (see `checks_every_turn`)."""
        self._every_turn[conversation_id] = mode == "always"

    def checks_every_turn(self, conversation_id: str) -> bool:
        """Whether the last turn on the conversation in this process checked every turn."""
        return self._every_turn.get(conversation_id, False)

    def known_blocks(self, conversation_id: str) -> int | None:
        """The fingerprint of the blocks the prompt holds, if this process knows it."""
        checked = self._checked.get(conversation_id)
        return checked[1] if checked else None

    def checked(self, conversation_id: str, generation: int, blocks: list[Any] | None) -> None:
        """Record a check (or a fresh conversation, `blocks=None`) at `generation`."""
        known = None if blocks is None else fingerprint(blocks)
        self._checked[conversation_id] = (generation, known, time.monotonic())

    def created(self, agent_id: str, conversation_id: str) -> None:
        """A conversation just created holds the current blocks: nothing to check yet."""
        self._created[conversation_id] = True
        self.checked(conversation_id, self._generation.get(agent_id, 0), None)

    def created_here(self, conversation_id: str) -> bool:
        """Whether this process created the conversation (see `created`)."""
        return conversation_id in self._created

    def not_created_here(self, conversation_id: str) -> None:
        """Forget that this process created the conversation (see `created_here`)."""
        self._created.pop(conversation_id, None)

    def touched(self, agent_id: str) -> None:
        """A turn of the agent ran a tool: every conversation's prompt may be behind."""
        with self._generation.lock:
            self._generation[agent_id] = self._generation.get(agent_id, 0) + 1

    def observe(self, agent_id: str, event: Any) -> None:
        """Note a server-side tool run in `event` as a possible edit of the agent's memory."""
        if getattr(event, "message_type", None) in _TOOL_EVENTS:
            self.touched(agent_id)

    def clear(self) -> None:
        """Forget every generation and check (as a new process)."""
        self._generation.clear()
        self._checked.clear()
        self._every_turn.clear()
        self._created.clear()


def behind(known: int | None, blocks: list[Any], prompt: str | None) -> bool:
    """Whether a conversation's prompt lags `blocks`.

    Judged by `known`, the fingerprint of the blocks it was compiled from, else by its
    text `prompt` (`None`: not read, or not found).
    """
    if known is not None:
        return known != fingerprint(blocks)
    # Letta's own rule for a rebuild: the current memory is not in the prompt text.
    return prompt is None or any(str(block.value) not in prompt for block in blocks)


def system_prompt(items: list[Any]) -> str | None:
    """The text of the system message that opens a conversation's first page, if any."""
    if not items or getattr(items[0], "message_type", None) != "system_message":
        return None
    content = items[0].content
    return content if isinstance(content, str) else None


def memory_blocks(agent: object) -> list[Any]:
    """The memory blocks (label and value) of an agent read as JSON.

    Read from the JSON, not through letta-client's model of the whole agent: building
    that model cost ~7 ms of client CPU per turn (measured, 30 warm turns).
    """
    blocks = agent.get("blocks") if isinstance(agent, dict) else None
    if not isinstance(blocks, list) or not all(
        isinstance(block, dict) and "label" in block and "value" in block for block in blocks
    ):
        raise LettaResponseError(
            f"The server answered an agent read with {str(agent)[:80]!r}, not an agent "
            "with its memory blocks."
        )
    return [SimpleNamespace(label=block["label"], value=block["value"]) for block in blocks]


def fingerprint(blocks: list[Any]) -> int:
    """What identifies a set of blocks: their labels and values, in any order."""
    return hash(tuple(sorted((str(block.label), str(block.value)) for block in blocks)))
