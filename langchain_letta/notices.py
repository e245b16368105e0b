"""Honour or say: arguments `ChatLetta` accepts but cannot honour are said once in the log.

Letta runs the agent with its own model settings: a send takes no sampling settings,
no token limit, no stop sequences and no tool choice. `ChatLetta` accepts them, so
code written for any chat model runs (the LangChain standard tests pass them), and
logs one warning per argument and process, as langchain-ollama's `bind_tools` does
for `tool_choice`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from langchain_letta.state import WARNED

__all__ = ["IGNORED", "say_ignored", "say_tool_choice", "warn_once"]

_LOG = logging.getLogger("langchain_letta.chat_models")

IGNORED = {
    "temperature": "the agent's model settings on the server govern sampling",
    "max_tokens": "the agent's model settings on the server govern the reply's length",
    "stop": "Letta has no stop sequences",
}
"""The arguments that are accepted and ignored, and why."""


def warn_once(message: str) -> None:
    """Log `message` as a warning, once per process (`langchain_letta.state.WARNED`)."""
    if message not in WARNED:
        WARNED[message] = True
        _LOG.warning(message)


def say_ignored(values: Mapping[str, Any], where: str) -> None:
    """Warn once for each argument of `IGNORED` that `values` sets (`where`: how it came)."""
    for name, reason in IGNORED.items():
        if values.get(name) not in (None, [], ()):
            warn_once(f"ChatLetta ignores {name} {where}: {reason}.")


def say_tool_choice(tool_choice: Any, forced: list[str] | None) -> None:
    """Warn once that a `tool_choice` other than `"auto"` is not enforced.

    A choice that forces a tool (`forced`) is asked for again after a reply in text
    (`langchain_letta.tool_choice`); the warning says so.
    """
    if tool_choice in (None, "auto"):
        return
    then = " A reply in text is answered by asking for it again." if forced else ""
    warn_once(
        f"ChatLetta.bind_tools(tool_choice={tool_choice!r}) is not enforced: "
        f"Letta lets the agent decide whether to call a tool.{then}"
    )
