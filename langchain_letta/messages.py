"""Conversion between LangChain messages and Letta messages: pure functions, no I/O.

Two directions:

* LangChain -> Letta: `split_at_stored` and `to_letta_messages` (`langchain_letta.to_letta`).
* Letta -> LangChain: `TurnChunker` maps a Letta stream, event by event, to
  `AIMessageChunk`; `from_letta_messages` converts stored Letta messages into the same
  messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk

from langchain_letta.approvals import APPROVAL_KEY, decision_message, decision_of
from langchain_letta.content import user_content_from_letta
from langchain_letta.to_letta import (
    anchor_conversation,
    client_return_ids,
    is_stored_in,
    split_at_stored,
    to_letta_messages,
)

__all__ = [
    "AGENT_SIDE",
    "LAST_MESSAGE_KEY",
    "PROVIDER",
    "SYSTEM_ALERT",
    "SYSTEM_ALERTS_KEY",
    "TurnChunker",
    "anchor_conversation",
    "client_return_ids",
    "from_letta_messages",
    "is_stored_in",
    "letta_metadata",
    "split_at_stored",
    "strip_indexes",
    "system_alert",
    "to_letta_messages",
]

PROVIDER = "letta"
AGENT_SIDE = frozenset(
    {
        "reasoning_message",
        "hidden_reasoning_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
        "approval_request_message",
    }
)


LAST_MESSAGE_KEY = "letta_last_message_id"
"""The `response_metadata` key naming a reply's last Letta message when it is not the
reply's own id (a turn of several Letta messages)."""


def letta_metadata(conversation_id: str, agent_id: str | None) -> dict[str, Any]:
    """Metadata that marks a message as stored by Letta in `conversation_id`."""
    return {"model_provider": PROVIDER, "conversation_id": conversation_id, "agent_id": agent_id}


# --------------------------------------------------------------------------- LangChain -> Letta


# --------------------------------------------------------------------------- Letta -> LangChain


def _kind(item: Any) -> str:
    return str(getattr(item, "message_type", None) or "")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", None) or "" for part in content or [])


def _parse_args(arguments: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"__raw__": arguments}
    return parsed if isinstance(parsed, dict) else {"__value__": parsed}


def _tool_calls_of(item: Any) -> list[Any]:
    calls = getattr(item, "tool_calls", None)
    if isinstance(calls, list) and calls:
        return calls
    return [item.tool_call] if getattr(item, "tool_call", None) is not None else []


def _server_tool_result(item: Any) -> dict[str, Any]:
    return {
        "type": "server_tool_result",
        "tool_call_id": item.tool_call_id,
        "status": item.status,
        "output": item.tool_return,
    }


@dataclass
class _PendingToolCall:
    message_id: str | None = None
    name: str = ""
    arguments: str = ""


@dataclass
class TurnChunker:
    """Turns the events of one Letta stream into `AIMessageChunk`, without buffering.

    Text arrives as string chunks while the turn has shown nothing but text, and as
    `text` blocks after a reasoning or tool block; reasoning arrives as `reasoning`
    blocks, the agent's own tools as `server_tool_call` / `server_tool_result`
    blocks, client-side tool calls (Letta's approval requests) as `tool_call_chunks`.
    `finish` returns the closing chunk: Letta's message id, usage and metadata.

    Ids: one reply, one id. Every chunk of a turn (token deltas, reasoning, tool steps,
    the closing chunk) carries the id of the first Letta message the turn streams, the
    reply's id: for a plain reply the one it is stored under. A reply that spans several
    Letta messages (reasoning, the agent's own tool steps, then its answer) keeps that
    first id; the invoked reply and the history carry it too, and
    `response_metadata["letta_last_message_id"]` names the turn's last message when it
    is another one.
    """

    conversation_id: str
    agent_id: str | None
    model_name: str | None = None
    run_id: str | None = None
    stop_reason: str | None = None
    last_message_id: str | None = None
    reply_id: str | None = None
    """The reply's id: the first Letta message the turn streams (see Ids above)."""
    usage: dict[str, Any] | None = None
    client_returns: frozenset[str] = frozenset()
    """Ids of client-side tool calls whose results were sent: Letta echoes them, skip those."""
    client_calls: list[tuple[str, str]] = field(default_factory=list)
    """The client-side tool calls the turn ended with: `(call id, tool name)`."""
    client_tools: frozenset[str] | None = None
    """Names of the turn's client-side tools: an approval request for any other tool is
    the agent's own tool waiting for approval (`None`: every request is client-side)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every call the turn stopped for: `tool_call_id`, `name`, `args`, `server_side`."""
    system_alerts: list[dict[str, str]] = field(default_factory=list)
    """Compaction summaries the server wrote during the turn: `id` and `content`."""
    _blocks_seen: bool = False
    _indexes: dict[tuple[str, str], int] = field(default_factory=dict)
    _tool_calls: dict[str, _PendingToolCall] = field(default_factory=dict)
    _tool_call_order: list[str] = field(default_factory=list)
    _approvals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def feed(self, event: Any) -> list[AIMessageChunk]:
        """The chunks for one stream event (often one, sometimes none)."""
        kind = _kind(event)
        self.run_id = getattr(event, "run_id", None) or self.run_id
        if kind in AGENT_SIDE and getattr(event, "id", None):
            self.last_message_id = event.id  # the turn's last stored step, any kind
            echo = kind == "tool_return_message" and event.tool_call_id in self.client_returns
            self.reply_id = self.reply_id or (None if echo else event.id)
        if kind == "tool_call_message":
            self._collect_tool_calls(event)
            return []
        chunks = self._flush_tool_calls()
        if kind == "assistant_message":
            chunks.append(self._text(event.id, _text_of(event.content)))
        elif kind == "reasoning_message":
            block = {"type": "reasoning", "reasoning": event.reasoning}
            chunks.append(self._block(event.id, kind, block))
        elif kind == "tool_return_message" and event.tool_call_id not in self.client_returns:
            chunks.append(self._block(event.id, event.tool_call_id, _server_tool_result(event)))
        elif kind == "approval_request_message":
            chunks.extend(self._approval_requests(event))
        elif (
            kind == "user_message"
            and (alert := system_alert(getattr(event, "content", None))) is not None
        ):
            self.system_alerts.append({"id": event.id, "content": alert})
        elif kind == "stop_reason":
            self.stop_reason = str(event.stop_reason)
        elif kind == "usage_statistics":
            self.usage = _usage(event)
        return [chunk for chunk in chunks if chunk.content or chunk.tool_call_chunks]

    def finish(self) -> AIMessageChunk:
        """The closing chunk: the stored message's id, usage and response metadata."""
        chunks = self._flush_tool_calls()
        for call_id, request in self._approvals.items():
            if request["server_side"] and not request.get("shown"):  # arguments never parsed
                request["shown"] = True
                block = {
                    "type": "server_tool_call",
                    "id": request["tool_call_id"],
                    "name": request["name"],
                    "args": request["args"],
                    "extras": {"letta_approval": "pending"},
                }
                chunks.append(self._block(call_id, call_id, block))
        metadata = {
            **letta_metadata(self.conversation_id, self.agent_id),
            "model_name": self.model_name,
            "stop_reason": self.stop_reason,
            "run_id": self.run_id,
        }
        if self.last_message_id and self.last_message_id != self.reply_id:
            metadata[LAST_MESSAGE_KEY] = self.last_message_id
        approvals = [
            {key: request[key] for key in ("tool_call_id", "name", "args")}
            for request in self.requests
            if request["server_side"]
        ]
        if approvals:
            metadata[APPROVAL_KEY] = approvals
        if self.system_alerts:
            metadata[SYSTEM_ALERTS_KEY] = list(self.system_alerts)
        if self.stop_reason in {"end_turn", "requires_approval"}:
            metadata["finish_reason"] = (
                "tool_calls" if self.stop_reason == "requires_approval" else "stop"
            )
        reply_id = self.reply_id or self.last_message_id
        last = AIMessageChunk(
            content=[] if self._blocks_seen else "",
            id=reply_id,
            usage_metadata=self.usage,  # type: ignore[arg-type]
            response_metadata=metadata,
            chunk_position="last",
        )
        if not chunks:
            return last
        closing = sum(chunks, AIMessageChunk(content=[])) + last
        return closing.model_copy(update={"id": reply_id or closing.id})

    def _index(self, message_id: str, part: str) -> int:
        return self._indexes.setdefault((message_id, part), len(self._indexes))

    def _text(self, message_id: str, text: str) -> AIMessageChunk:
        if not self._blocks_seen:
            return AIMessageChunk(content=text, id=self.reply_id or message_id)
        index = self._index(message_id, "text")
        block = {"type": "text", "text": text, "index": index}
        return AIMessageChunk(content=[block], id=self.reply_id or message_id)

    def _block(
        self, message_id: str, part: str, block: dict[str, Any], chunk_id: str | None = None
    ) -> AIMessageChunk:
        self._blocks_seen = True
        content: list[str | dict[Any, Any]] = [{**block, "index": self._index(message_id, part)}]
        return AIMessageChunk(content=content, id=self.reply_id or chunk_id or message_id)

    def _collect_tool_calls(self, event: Any) -> None:
        for call in _tool_calls_of(event):
            call_id = call.tool_call_id or (self._tool_call_order or [""])[-1]
            if call_id not in self._tool_calls:
                self._tool_calls[call_id] = _PendingToolCall(getattr(event, "id", None))
                self._tool_call_order.append(call_id)
            pending = self._tool_calls[call_id]
            pending.name = pending.name or call.name or ""
            pending.arguments += call.arguments or ""

    def _flush_tool_calls(self) -> list[AIMessageChunk]:
        chunks = []
        for call_id in self._tool_call_order:
            pending = self._tool_calls.pop(call_id)
            block = {
                "type": "server_tool_call",
                "id": call_id,
                "name": pending.name,
                "args": _parse_args(pending.arguments),
            }
            chunks.append(self._block(call_id, "server_tool_call", block, pending.message_id))
        self._tool_call_order.clear()
        return chunks

    def _approval_requests(self, event: Any) -> list[AIMessageChunk]:
        """Client-side calls as `tool_call_chunks`; the agent's own as blocks to approve.

        With `stream_tokens` a call arrives in deltas of one call id (the name in the
        first only): each call is one request, and the agent's own call is shown once
        its arguments are complete.
        """
        chunks = []
        client_calls = []
        for position, call in enumerate(_tool_calls_of(event)):
            call_id = str(call.tool_call_id or next(reversed(self._approvals), ""))
            request = self._approvals.get(call_id)
            if request is None:
                server_side = self.client_tools is not None and call.name not in self.client_tools
                request = {
                    "tool_call_id": call.tool_call_id,
                    "name": call.name,
                    "args": {},
                    "server_side": server_side,
                    "raw": "",
                }
                self._approvals[call_id] = request
                self.requests.append(request)
                if not server_side:
                    self.client_calls.append((str(call.tool_call_id), str(call.name)))
            request["raw"] += call.arguments or ""
            request["args"] = _parse_args(request["raw"] or "{}")
            if request["server_side"]:
                if "__raw__" not in request["args"] and not request.get("shown"):
                    request["shown"] = True
                    block = {
                        "type": "server_tool_call",
                        "id": request["tool_call_id"],
                        "name": request["name"],
                        "args": request["args"],
                        "extras": {"letta_approval": "pending"},
                    }
                    chunks.append(self._block(event.id, call_id, block))
                continue
            client_calls.append(
                tool_call_chunk(
                    name=call.name,
                    args=call.arguments,
                    id=call.tool_call_id,
                    index=self._index(event.id, call_id or str(position)),
                )
            )
        if client_calls:
            chunks.append(
                AIMessageChunk(
                    content="", id=self.reply_id or event.id, tool_call_chunks=client_calls
                )
            )
        return chunks


def _usage(event: Any) -> dict[str, Any]:
    prompt = event.prompt_tokens or 0
    completion = event.completion_tokens or 0
    usage: dict[str, Any] = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": event.total_tokens or prompt + completion,
    }
    if event.cached_input_tokens is not None:
        usage["input_token_details"] = {"cache_read": event.cached_input_tokens}
    if event.reasoning_tokens is not None:
        usage["output_token_details"] = {"reasoning": event.reasoning_tokens}
    return usage


def strip_indexes(message: AIMessage) -> AIMessage:
    """`message` with the streaming `index` keys removed from its content blocks."""
    if isinstance(message.content, str):
        return message
    content = [
        {k: v for k, v in block.items() if k != "index"} if isinstance(block, dict) else block
        for block in message.content
    ]
    return message.model_copy(update={"content": content})


def from_letta_messages(
    items: Iterable[Any],
    *,
    conversation_id: str,
    agent_id: str | None,
    include_system: bool = False,
) -> list[BaseMessage]:
    """Convert stored Letta messages (oldest first) into LangChain messages.

    The agent's steps between two user messages (reasoning, its own tool calls and
    results, its reply) become one `AIMessage`, exactly as `TurnChunker`
    builds a streamed turn. The conversation's compiled system prompt is left out
    unless `include_system` is set; a compaction summary (a Letta system alert) is
    always a `SystemMessage` whose `response_metadata["letta_message_type"]` is
    `"system_alert"`.
    """
    metadata = letta_metadata(conversation_id, agent_id)
    converted: list[BaseMessage] = []
    turn: list[Any] = []
    client_returns: set[str] = set()

    def close_turn() -> None:
        if turn:
            converted.append(_agent_turn_message(turn, conversation_id, agent_id))
            turn.clear()

    for item in items:
        kind = _kind(item)
        if kind == "tool_return_message" and item.tool_call_id in client_returns:
            continue  # Letta's echo of a client-side tool result, already a ToolMessage
        if kind in AGENT_SIDE:
            turn.append(item)
            if kind == "approval_request_message":
                close_turn()
        elif kind == "user_message" and (alert := system_alert(item.content)) is not None:
            close_turn()  # a compaction summary: one SystemMessage wherever it is read
            converted.append(
                SystemMessage(
                    content=alert,
                    id=item.id,
                    response_metadata={**metadata, "letta_message_type": SYSTEM_ALERT},
                )
            )
        elif kind == "user_message":
            close_turn()
            converted.append(
                HumanMessage(
                    content=user_content_from_letta(item.content),
                    id=item.id,
                    response_metadata=dict(metadata),
                )
            )
        elif kind == "system_message":
            close_turn()
            if include_system:
                converted.append(
                    SystemMessage(
                        content=item.content, id=item.id, response_metadata=dict(metadata)
                    )
                )
        elif kind == "approval_response_message":
            close_turn()
            tool_messages = _tool_messages(item, metadata)
            client_returns.update(
                m.tool_call_id  # type: ignore[attr-defined]
                for m in tool_messages
                if decision_of(m) is None  # an approved tool's result is the agent's own
            )
            converted.extend(tool_messages)
    close_turn()
    return converted


SYSTEM_ALERT = "system_alert"
SYSTEM_ALERTS_KEY = "letta_system_alerts"


def system_alert(content: Any) -> str | None:
    """The text of a Letta system alert (a compaction summary), else `None`.

    Letta stores the summary a compaction leaves as a user message whose content is
    `{"type": "system_alert", "message": ...}`.
    """
    if not isinstance(content, str) or not content.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("type") == SYSTEM_ALERT:
        return str(data.get("message") or "")
    return None


def _agent_turn_message(items: list[Any], conversation_id: str, agent_id: str | None) -> AIMessage:
    chunker = TurnChunker(conversation_id=conversation_id, agent_id=agent_id)
    chunker.last_message_id = items[-1].id
    chunks = [chunk for item in items for chunk in chunker.feed(item)]
    merged = sum(chunks[1:], chunks[0]) + chunker.finish() if chunks else chunker.finish()
    metadata = {k: v for k, v in merged.response_metadata.items() if v is not None}
    message = AIMessage(
        content=merged.content,
        id=chunker.reply_id or items[-1].id,  # the reply's id, as a streamed reply's chunks
        tool_calls=merged.tool_calls,
        response_metadata=metadata,
    )
    return strip_indexes(message)


def _tool_messages(item: Any, metadata: dict[str, Any]) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for approval in getattr(item, "approvals", None) or []:
        if getattr(approval, "type", None) == "approval":
            messages.append(decision_message(approval, metadata, item.id))
            continue
        if getattr(approval, "type", None) != "tool":
            continue
        messages.append(
            ToolMessage(
                content=_text_of(approval.tool_return),
                tool_call_id=approval.tool_call_id,
                status=approval.status,
                id=item.id,
                response_metadata=dict(metadata),
            )
        )
    return messages
