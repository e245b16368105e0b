"""``tool_choice``: Letta lets the agent decide, so a forced choice is asked for again.

Letta's send API takes no ``tool_choice``: the agent may answer in text where the
caller demanded a tool call. Callers that demand one call the model again after such
an answer: ``create_agent(response_format=...)`` binds its structured-output tool with
``tool_choice="any"`` and, when the agent has no other tools, goes back to the model
until it gets the structured answer. That second call's input ends with the agent's
own reply, so there is nothing new to send.

``ChatLetta`` answers it by asking again: when ``tool_choice`` forces a tool (``"any"``,
``"required"``, a tool's name) and the input's newest message is the agent's reply
without a tool call, it sends one user message naming the tools
(:data:`REASK`). Letta stores it in the conversation (it is the only way to ask), the
graph's state does not hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

__all__ = ["REASK", "forced_tools", "reask"]

REASK = "Answer by calling {tools}."
"""The message that asks again for a forced tool call."""


def forced_tools(tool_choice: Any, names: Sequence[str]) -> list[str] | None:
    """The tools ``tool_choice`` forces the agent to choose from (``None``: it forces none)."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        return [str(name)] if name else None
    if tool_choice in {"any", "required", True}:
        return list(names) or None
    if isinstance(tool_choice, str) and tool_choice in names:
        return [tool_choice]
    return None  # "auto", "none", None


def reask(messages: Sequence[BaseMessage], forced: Sequence[str] | None) -> list[BaseMessage]:
    """``messages``, followed by the request to call a forced tool when it is due."""
    last = messages[-1] if messages else None
    answered_in_text = (
        isinstance(last, AIMessage)
        and not last.tool_calls
        and str(last.id or "").startswith("message-")
    )
    if not forced or not answered_in_text:
        return list(messages)
    tools = " or ".join(f"the tool `{name}`" for name in forced)
    return [*messages, HumanMessage(REASK.format(tools=tools))]
