"""``create_agent`` middleware for Letta agents (needs ``pip install langchain``).

Letta keeps the thread on the server, so two habits of client-side middleware need a
Letta way:

* **Approvals.** :class:`LettaApprovalMiddleware` turns a server-side tool waiting for
  approval into a LangGraph ``interrupt()`` carrying the tool's name and arguments;
  ``Command(resume=...)`` approves or denies it in the same conversation.
* **Summaries.** Summarising in the client (``SummarizationMiddleware``) with the same
  ``ChatLetta`` would send the summarisation prompt into the user's conversation (the
  call inherits the graph's ``thread_id``). :class:`LettaCompactionMiddleware` asks Letta
  to compact the conversation instead and trims the graph's state to match. For any
  other helper call that must stay out of the user's thread, use a separate
  ``ChatLetta(..., auxiliary=True)``: each of its calls runs in a throwaway conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import letta_client
from langchain.agents.middleware import AgentMiddleware, AgentState, hook_config
from langchain_core.messages import AIMessage, BaseMessage, RemoveMessage, ToolMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from langchain_letta.approvals import LettaApproval, approve, deny, pending_approvals
from langchain_letta.chat_models import ChatLetta
from langchain_letta.errors import LettaInputError, translate_error
from langchain_letta.messages import anchor_conversation, is_stored_in

__all__ = ["LettaApprovalMiddleware", "LettaCompactionMiddleware", "ask_approvals"]

_LOG = logging.getLogger(__name__)


def ask_approvals(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """Interrupt for each approval the newest reply waits for; the decisions to send.

    Use it in a graph node of its own (code before an ``interrupt()`` runs again on
    resume, so never in the node that calls the model). Each ``interrupt()`` carries
    ``{"type": "letta_approval", "tool_call_id", "name", "args", "conversation_id"}``;
    resume with ``True`` / ``False``, ``"approve"`` / ``"deny"``, or
    ``{"approve": bool, "reason": str}``.
    """
    last = messages[-1] if messages else None
    if not isinstance(last, AIMessage):
        return []
    return [_decide(approval) for approval in pending_approvals(last)]


def _decide(approval: LettaApproval) -> ToolMessage:
    answer = interrupt({"type": "letta_approval", **approval.as_dict()})
    if isinstance(answer, dict):
        approved, reason = answer.get("approve"), answer.get("reason")
    else:
        approved, reason = answer, None
    if isinstance(approved, str):
        approved = {"approve": True, "deny": False}.get(approved.lower(), approved)
    if not isinstance(approved, bool):
        raise LettaInputError(
            "Resume a Letta approval with True/False, 'approve'/'deny' or "
            f"{{'approve': bool, 'reason': str}}; got {answer!r}."
        )
    return approve(approval) if approved else deny(approval, reason=reason)


class LettaApprovalMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Pauses the agent for a human decision when a Letta tool waits for approval.

    After each model call, every pending approval of the reply becomes an
    ``interrupt()`` (see :func:`ask_approvals`); on resume the decisions go back to the
    model, which sends them to Letta in the same conversation and returns the agent's
    next reply.

    Example:
        .. code-block:: python

            agent = create_agent(model, middleware=[LettaApprovalMiddleware()],
                                 checkpointer=InMemorySaver())
            state = agent.invoke({"messages": [("user", "...")]}, config)
            state["__interrupt__"][0].value   # {"name": ..., "args": ..., ...}
            agent.invoke(Command(resume={"approve": False, "reason": "no"}), config)

    """

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The decisions on the reply's pending approvals, then back to the model."""
        decisions = ask_approvals(state["messages"])
        if not decisions:
            return None
        return {"messages": decisions, "jump_to": "model"}


class LettaCompactionMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Compacts the Letta conversation on the server instead of summarising in the client.

    Before a model call whose state holds more than ``trigger`` messages, it asks Letta
    to compact the conversation (``conversations.messages.compact``: Letta summarises
    with the agent's own model and keeps the summary in the conversation's context),
    then keeps only the newest ``keep`` messages in the graph's state. A compaction the
    server fails is logged and the turn goes on (Letta also compacts by itself when the
    context fills); a connection error is raised. The newest
    message Letta stored always stays, so the next turn still sends only what is new;
    nothing is sent to the user's conversation as a message.

    Args:
        model: the ``ChatLetta`` of the agent.
        trigger: compact when the state holds more messages than this.
        keep: how many of the newest messages to keep in the state.

    """

    def __init__(self, model: ChatLetta, *, trigger: int = 40, keep: int = 10) -> None:
        super().__init__()
        if keep < 1 or trigger < keep:
            raise LettaInputError("LettaCompactionMiddleware needs 1 <= keep <= trigger.")
        self.model = model
        self.trigger = trigger
        self.keep = keep

    def before_model(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Compact on the server and trim the state once it grew past ``trigger``."""
        messages = state["messages"]
        conversation_id = anchor_conversation(messages)
        if len(messages) <= self.trigger or conversation_id is None:
            return None
        try:
            self.model.client.conversations.messages.compact(conversation_id)  # type: ignore[union-attr]
        except letta_client.BadRequestError:
            pass  # "failed to reduce the number of messages": Letta had nothing to compact
        except letta_client.APIStatusError as error:
            # the turn goes on: Letta also compacts by itself when the context is full
            _LOG.warning("Letta could not compact %s: %s", conversation_id, translate_error(error))
        except Exception as error:
            raise translate_error(error) from error
        start = _safe_start(messages, len(messages) - self.keep, conversation_id)
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *messages[start:]]}


def _safe_start(messages: Sequence[BaseMessage], start: int, conversation_id: str) -> int:
    """Where the kept tail may start: at or before the newest stored message.

    Never at a tool result: its call must stay with it.
    """
    newest = max(i for i, m in enumerate(messages) if is_stored_in(m, conversation_id))
    start = min(max(start, 0), newest)
    while start > 0 and isinstance(messages[start], ToolMessage):
        start -= 1
    return start
