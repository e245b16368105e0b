"""Approvals of the agent's own (server-side) tools: a typed state, approve and deny.

A Letta tool can require approval (`client.agents.tools.update_approval(name,
agent_id=..., body_requires_approval=True)`). When the agent calls it, the turn stops
with `stop_reason="requires_approval"` and the tool waits on the server. Unlike the
client-side tools bound with `bind_tools` (which arrive as `tool_calls` for the app
to run), such a call must not run in the app: `ChatLetta` shows it as a
`server_tool_call` block and lists it in `response_metadata["letta_approvals"]`.

Read it with `pending_approvals`, answer with `approve` or `deny`,
which make the message to send next on the same session:

```python
reply = model.invoke("Note that I like tea", config=alice)
for approval in pending_approvals(reply):
    print(approval.name, approval.args)
reply = model.invoke([approve(approval)], config=alice)       # the tool runs
# or: model.invoke([deny(approval, reason="not now")], config=alice)
```

Letta stores the decision and the agent goes on in the same conversation. In LangGraph
the same state becomes an `interrupt()`: see
`langchain_letta.middleware.LettaApprovalMiddleware`.

A session's next turn that answers neither an approval nor a client-side tool call
still runs: `ChatLetta` first answers what is left pending (a tool call is answered
"not run", an approval denied), so no session is stuck. What this process left pending
it knows; in another process (after a restart) Letta refuses the turn, `ChatLetta`
reads the pending calls from the conversation and sends the turn once more, with those answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, ToolMessage

from langchain_letta.errors import LettaInputError
from langchain_letta.item_rows import newest_first
from langchain_letta.lru import LRU
from langchain_letta.plans import Call, Plan

__all__ = [
    "APPROVAL_KEY",
    "LettaApproval",
    "approve",
    "decision_of",
    "deny",
    "pending_approvals",
]

APPROVAL_KEY = "letta_approvals"
"""The `response_metadata` key listing a reply's pending approvals."""
_DECISION_KEY = "letta_approve"
_NOT_RUN = "Not run: the conversation went on without this tool's result."
_MOVED_ON = "The user went on without deciding."


@dataclass(frozen=True)
class LettaApproval:
    """A call of a server-side tool that waits for approval.

    Attributes:
        tool_call_id: the call's id, which the decision answers.
        name: the tool's name.
        args: the arguments the agent chose.
        conversation_id: the conversation the call waits in.

    """

    tool_call_id: str
    name: str
    args: dict[str, Any]
    conversation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The approval as plain data (what an `interrupt()` carries)."""
        return {
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "args": self.args,
            "conversation_id": self.conversation_id,
        }


def pending_approvals(message: BaseMessage) -> list[LettaApproval]:
    """The approvals a reply of `ChatLetta` waits for (empty for most replies)."""
    conversation_id = message.response_metadata.get("conversation_id")
    return [
        LettaApproval(
            tool_call_id=str(item["tool_call_id"]),
            name=str(item["name"]),
            args=dict(item.get("args") or {}),
            conversation_id=conversation_id,
        )
        for item in message.response_metadata.get(APPROVAL_KEY) or []
    ]


def approve(approval: LettaApproval) -> ToolMessage:
    """The message that approves `approval`: send it next on the same session."""
    return _decision(approval, approved=True, reason=None)


def deny(approval: LettaApproval, reason: str | None = None) -> ToolMessage:
    """The message that denies `approval` (the agent sees `reason`)."""
    return _decision(approval, approved=False, reason=reason)


def _decision(approval: LettaApproval, *, approved: bool, reason: str | None) -> ToolMessage:
    if not isinstance(approval, LettaApproval):
        raise LettaInputError(
            f"approve()/deny() take a LettaApproval (see pending_approvals), not "
            f"{type(approval).__name__}."
        )
    text = reason or ("Approved." if approved else "Denied.")
    return ToolMessage(
        content=text,
        tool_call_id=approval.tool_call_id,
        name=approval.name,
        status="success" if approved else "error",
        additional_kwargs={_DECISION_KEY: approved},
    )


def decision_of(message: BaseMessage) -> dict[str, Any] | None:
    """The Letta approval payload of a decision message, `None` for other messages."""
    if not isinstance(message, ToolMessage) or _DECISION_KEY not in message.additional_kwargs:
        return None
    approved = bool(message.additional_kwargs[_DECISION_KEY])
    decision: dict[str, Any] = {
        "type": "approval",
        "tool_call_id": message.tool_call_id,
        "approve": approved,
    }
    if not approved:
        decision["reason"] = message.text or None
    return decision


def decision_message(approval: Any, metadata: dict[str, Any], message_id: str) -> ToolMessage:
    """A stored decision (an item of Letta's `approval_response_message`) as a message."""
    approved = bool(approval.approve)
    reason = getattr(approval, "reason", None)
    return ToolMessage(
        content=reason or ("Approved." if approved else "Denied."),
        tool_call_id=approval.tool_call_id,
        status="success" if approved else "error",
        id=message_id,
        additional_kwargs={_DECISION_KEY: approved},
        response_metadata=dict(metadata),
    )


# --------------------------------------------------------------------------- left pending


@dataclass(frozen=True)
class _Pending:
    tool_call_id: str
    server_side: bool


class PendingCalls:
    """Calls a turn left waiting, per conversation, in this process.

    A turn that ends with `requires_approval` records its calls; the conversation's
    next turn answers them itself or has them answered first (see `answer_waiting_calls`).

    Args:
        budget: how many conversations to keep.

    """

    def __init__(self, budget: int) -> None:
        self._pending: LRU[str, list[_Pending]] = LRU(budget)

    def record(self, conversation_id: str, requests: Iterable[dict[str, Any]]) -> None:
        """Remember the calls of a turn that stopped for them (replacing older ones)."""
        calls = [_Pending(str(r["tool_call_id"]), bool(r["server_side"])) for r in requests]
        if calls:
            self._pending[conversation_id] = calls
        else:
            self._pending.pop(conversation_id, None)

    def answer_waiting_calls(
        self, conversation_id: str, payloads: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`payloads`, led by answers to the calls they leave unanswered.

        A client-side tool call gets a "not run" error result, a server-side approval
        a denial: Letta refuses any new message while a call waits.
        """
        pending = self._pending.pop(conversation_id, [])
        answered = {
            str(item["tool_call_id"])
            for payload in payloads
            if payload.get("type") == "approval"
            for item in payload.get("approvals") or []
        }
        answers = [_answer(call) for call in pending if call.tool_call_id not in answered]
        if not answers:
            return list(payloads)
        if payloads and payloads[0].get("type") == "approval":
            first = {**payloads[0], "approvals": [*answers, *payloads[0]["approvals"]]}
            return [first, *payloads[1:]]
        return [{"type": "approval", "approvals": answers}, *payloads]

    def recovering(self, conversation_id: str, client_tools: frozenset[str]) -> Plan[bool]:
        """Learn from the server the calls a conversation waits for; whether there are any.

        For a turn Letta refused because a call waits (`LettaPendingApprovalError`) in
        a process that did not make the turn that left it: the newest stored message is
        the agent's approval request. A call of a tool in `client_tools` is the app's
        (answered "not run"), any other the agent's own (denied). A plan
        (`langchain_letta.plans`): run it sync or async.
        """
        # by creation: once the server compacted it, a conversation's listing by position
        # no longer ends with its newest messages; a fork that made none shows its parent's
        made = {"conversation_id": conversation_id, "order": "desc", "limit": 4}
        newest = newest_first(list((yield Call("messages.list", (), made))))
        if not newest:
            kwargs = {"order": "desc", "limit": 4}
            listed = yield Call("conversations.messages.list", (conversation_id,), kwargs)
            newest = list(listed.items)
        calls = []
        for item in newest:
            if str(item.message_type) != "approval_request_message":
                break
            for call in item.tool_calls or [item.tool_call]:
                if call is not None:
                    calls.append(
                        {
                            "tool_call_id": call.tool_call_id,
                            "server_side": call.name not in client_tools,
                        }
                    )
        self.record(conversation_id, calls)
        return bool(calls)

    def forget(self, conversation_id: str) -> None:
        """Drop what is known of the conversation (its turn failed)."""
        self._pending.pop(conversation_id, None)

    def clear(self) -> None:
        """Forget every conversation."""
        self._pending.clear()


def _answer(call: _Pending) -> dict[str, Any]:
    if call.server_side:
        return {
            "type": "approval",
            "tool_call_id": call.tool_call_id,
            "approve": False,
            "reason": _MOVED_ON,
        }
    return {
        "type": "tool",
        "tool_call_id": call.tool_call_id,
        "tool_return": _NOT_RUN,
        "status": "error",
    }
