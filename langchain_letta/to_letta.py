"""LangChain -> Letta: what a conversation has not stored yet, as Letta message payloads.

`split_at_stored` applies the delta rule (send only the messages after the newest one Letta
stored in the conversation); `to_letta_messages` turns them into Letta payloads. Pure
functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_letta.approvals import decision_of
from langchain_letta.content import user_part
from langchain_letta.errors import LettaInputError

__all__ = [
    "anchor_conversation",
    "client_return_ids",
    "is_stored_in",
    "not_stored",
    "split_at_stored",
    "to_letta_messages",
]


def is_stored_in(message: BaseMessage, conversation_id: str) -> bool:
    """Whether `message` is a message Letta stored in `conversation_id`."""
    return (
        bool(message.id)
        and str(message.id).startswith("message-")
        and message.response_metadata.get("conversation_id") == conversation_id
    )


def anchor_conversation(messages: Sequence[BaseMessage]) -> str | None:
    """The conversation of the newest Letta-stored message in `messages`, if any."""
    for message in reversed(messages):
        conversation_id = message.response_metadata.get("conversation_id")
        if message.id and str(message.id).startswith("message-") and conversation_id:
            return str(conversation_id)
    return None


def split_at_stored(
    messages: Sequence[BaseMessage], conversation_id: str
) -> tuple[BaseMessage | None, list[BaseMessage]]:
    """Split `messages` at the newest message Letta already stored in the conversation.

    Returns that anchor message (`None` when there is none) and the messages after it,
    which are the only ones that still need sending.
    """
    for position in range(len(messages) - 1, -1, -1):
        if is_stored_in(messages[position], conversation_id):
            return messages[position], list(messages[position + 1 :])
    return None, list(messages)


def to_letta_messages(
    messages: Sequence[BaseMessage], *, anchor: BaseMessage | None = None
) -> list[dict[str, Any]]:
    """Letta message payloads for `messages` (without `otid`; see `langchain_letta.turns`).

    `anchor` is the stored message they follow: tool results answering its tool calls
    go back as Letta tool returns. Without an anchor, tool results that open the input
    answer the conversation's pending tool calls (a session's next turn after
    `tool_calls`), so they go back as tool returns too.

    Raises:
        LettaInputError: when there is nothing to send or a message cannot be sent.

    """
    if not messages:
        raise LettaInputError("Nothing to send: the input has no message Letta has not stored.")
    pending_calls = {call["id"] for call in getattr(anchor, "tool_calls", None) or []}
    payloads: list[dict[str, Any]] = []
    returns: list[dict[str, Any]] = []
    leading = anchor is None
    for message in messages:
        leading = leading and isinstance(message, ToolMessage)
        decision = decision_of(message)  # an approval decision answers wherever it stands
        if decision is not None:
            returns.append(decision)
            continue
        if isinstance(message, ToolMessage) and (leading or message.tool_call_id in pending_calls):
            returns.append(_tool_return(message))
            continue
        if returns:
            payloads.append({"type": "approval", "approvals": returns})
            returns = []
        payloads.append(_letta_message(message))
    if returns:
        payloads.append({"type": "approval", "approvals": returns})
    return payloads


def client_return_ids(payloads: Sequence[dict[str, Any]]) -> frozenset[str]:
    """Ids of the client-side tool calls that `payloads` answer (not approvals)."""
    return frozenset(
        str(approval["tool_call_id"])
        for payload in payloads
        if payload.get("type") == "approval"
        for approval in payload["approvals"]
        if approval.get("type") == "tool"
    )


def _tool_return(message: ToolMessage) -> dict[str, Any]:
    return {
        "type": "tool",
        "tool_call_id": message.tool_call_id,
        "tool_return": message.text or json.dumps(message.content, default=str),
        "status": "error" if message.status == "error" else "success",
    }


def _letta_message(message: BaseMessage) -> dict[str, Any]:
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": _user_content(message)}
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": _plain_text(message)}
    if isinstance(message, AIMessage):
        return {"role": "assistant", "content": _assistant_text(message)}
    if isinstance(message, ToolMessage):
        text = message.text or json.dumps(message.content, default=str)
        # no call id in the text: ids are often random, and request bodies must replay
        return {"role": "user", "content": f"Result of {message.name or 'a tool call'}: {text}"}
    raise LettaInputError(f"Letta cannot take a message of type {message.type!r}.")


def _plain_text(message: BaseMessage) -> str:
    text = message.text
    if not text.strip():
        raise LettaInputError(f"A {message.type} message with no text cannot be sent.")
    return text


def _assistant_text(message: AIMessage) -> str:
    own = [
        block
        for block in message.content
        if isinstance(block, dict) and block.get("type") == "server_tool_call"
    ]  # the agent's own tool calls (an approval waiting among them) go as text too
    calls = [
        f"[called {call['name']}({json.dumps(call.get('args') or {})})]"
        for call in [*own, *message.tool_calls]
    ]
    text = "\n".join(filter(None, [message.text, *calls]))
    if not text.strip():
        raise LettaInputError("An AI message with no text and no tool call cannot be sent.")
    return text


def _user_content(message: HumanMessage) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return _plain_text(message)
    parts = [user_part(block) for block in message.content_blocks]
    if not any(part["type"] == "text" and part["text"].strip() for part in parts) and not any(
        part["type"] == "image" for part in parts
    ):
        raise LettaInputError("A human message with no text and no image cannot be sent.")
    return parts


def not_stored(messages: Sequence[BaseMessage], conversation_id: str | None) -> list[BaseMessage]:
    """The messages of `messages` that Letta has not stored in the conversation.

    A message is stored when it carries the conversation's Letta id, or when it comes
    before an AI message Letta stored (it was that turn's input).
    """
    if conversation_id is None:
        return list(messages)
    last_stored_ai = max(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, AIMessage) and is_stored_in(m, conversation_id)
        ),
        default=-1,
    )
    return [
        message
        for position, message in enumerate(messages)
        if position > last_stored_ai and not is_stored_in(message, conversation_id)
    ]
