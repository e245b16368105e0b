"""Time travel: an input that diverges from its conversation continues in a fork of it.

LangGraph can run a thread again from an earlier checkpoint (time travel). The input then
ends at a message that is no longer the conversation's newest: Letta already stored later
turns that the graph has abandoned. Sending the new turn there would put the abandoned
turns in the agent's context, so the turn goes to a *branch* instead: a fork of the
conversation at that message.

How a branch is made depends on the server, found out once per server and process:

* **Letta Cloud** forks at a message (`conversations.fork(id, message_id=...)`): the
  branch holds the very same stored messages up to the fork point.
* **The open-source server (0.16.8)** forks only whole conversations (it accepts
  `message_id` and ignores it, measured). There the branch is a new conversation of the
  agent seeded with the shared prefix: the input's messages up to the fork point are sent
  with the new turn, in one request, so Letta stores them (under new ids) and runs the
  agent once. Tool calls in the prefix are seeded as text (Letta stores a message only by
  running the agent).

The probe forks at the message, reads the fork back and keeps it only if it ends there;
otherwise it deletes it and seeds (each later fork seeds at once).

A branch is found again after a restart: its `summary` names the conversation it
branches from (`langchain-letta branch of conv-...`), and the graph's state names the
branch in its messages' metadata, so a thread's next turn on a branch goes to the branch.
The original conversation keeps its turns; each conversation stores a turn once.

A replay of a thread's very first step has no Letta message to diverge at: it is
recognised by the LangChain ids of its messages (LangGraph gives each state message
one, and keeps it in the checkpoint) and goes to a new branch. Such a step's messages
are sent with `otid` values derived from those ids and the conversation
(`replay_key`), so a replay is recognised in any process: this process remembers
the ids of the turns it stored; a process that knows nothing of the conversation (it
neither created it nor ran a turn there) looks for those `otid` values among the
conversation's first messages, one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from letta_client import AsyncLetta, Letta

from langchain_letta.approvals import decision_of
from langchain_letta.clients import for_running_loop
from langchain_letta.errors import LettaInputError
from langchain_letta.messages import LAST_MESSAGE_KEY, is_stored_in, split_at_stored
from langchain_letta.plans import Call, Plan, arun, run
from langchain_letta.state import (
    FORKS_AT_MESSAGE,
    MEMORY_CHECKS,
    PLANNED,
    ROOTS,
    SENT,
    TIPS,
    forget_seen_turns,
)
from langchain_letta.turns import keyed_otids

__all__ = ["BRANCH_PREFIX", "Branches", "branch_tag", "record_tip", "replay_key"]

BRANCH_PREFIX = "langchain-letta branch of "
_DIVERGENCE_DEPTH = 20
_FIRST_STEP_DEPTH = 20
_SENT_PER_CONVERSATION = 10_000


def branch_tag(root_id: str) -> str:
    """The `summary` that marks a conversation as a branch of `root_id`."""
    return f"{BRANCH_PREFIX}{root_id}"


def record_tip(conversation_id: str, message_id: str | None) -> None:
    """Remember the newest message a turn stored in the conversation.

    The turn's input messages that carry a LangChain id (LangGraph gives every state
    message one) are remembered as sent there too, so a replay of them is recognised.
    """
    if message_id:
        TIPS[conversation_id] = message_id
        planned = PLANNED.pop(conversation_id, ())
        with SENT.lock:
            sent = SENT.obtain(conversation_id, set)
            sent.update(planned)
            if len(sent) > _SENT_PER_CONVERSATION:
                sent.clear()  # and a replay of what it held must be looked for again
                forget_seen_turns(conversation_id)
            SENT.reweigh(conversation_id)


class Branches:
    """Places a turn's input in the conversation it continues, forking on divergence.

    The decisions are one plan (`langchain_letta.plans`), run by `place` and `aplace`.

    Args:
        client: the letta-client.
        agent_id: the agent whose conversations these are.
        async_client: the async letta-client, for `aplace`.

    """

    def __init__(
        self, client: Letta, agent_id: str, async_client: AsyncLetta | None = None
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.async_client = async_client

    def place(
        self, conversation_id: str, messages: Sequence[BaseMessage]
    ) -> tuple[str, list[BaseMessage]]:
        """The conversation the input continues, and the input as that conversation sees it.

        Usually `conversation_id` and `messages` unchanged, at no request. The
        conversation changes when the input's newest Letta message belongs to a branch
        of `conversation_id` (a thread's turn on a branch), or when the input diverges
        from the conversation (then a new branch is made).
        """
        return run(self._placing(conversation_id, messages), self.client)

    async def aplace(
        self, conversation_id: str, messages: Sequence[BaseMessage]
    ) -> tuple[str, list[BaseMessage]]:
        """Async twin of `place`."""
        if self.async_client is None:
            raise LettaInputError("These Branches were built without an async client.")
        client = for_running_loop(self.async_client)
        return await arun(self._placing(conversation_id, messages), client)

    def _placing(
        self, conversation_id: str, messages: Sequence[BaseMessage]
    ) -> Plan[tuple[str, list[BaseMessage]]]:
        conversation_id = yield from self._branch_in_input(conversation_id, messages)
        anchor, tail = split_at_stored(messages, conversation_id)
        if anchor is None and (yield from self._replayed(conversation_id, tail)):
            return (yield from self._seed(conversation_id, messages))  # a replayed first step
        if anchor is not None and (yield from self._diverges(conversation_id, _end(anchor))):
            conversation_id, messages = yield from self._fork(conversation_id, messages, anchor)
            _, tail = split_at_stored(messages, conversation_id)
        _plan(conversation_id, tail)
        return conversation_id, list(messages)

    # ------------------------------------------------------------------------ which branch

    def _branch_in_input(self, conversation_id: str, messages: Sequence[BaseMessage]) -> Plan[str]:
        """The branch of `conversation_id` the input's newest Letta message is in, if any."""
        for message in reversed(messages):
            named = message.response_metadata.get("conversation_id")
            if not (message.id and str(message.id).startswith("message-") and named):
                continue
            if named == conversation_id:
                return conversation_id
            if (yield from self._root(str(named))) == (yield from self._root(conversation_id)):
                return str(named)
            return conversation_id
        return conversation_id

    def _root(self, conversation_id: str) -> Plan[str]:
        known = ROOTS.get(conversation_id)
        if known:
            return known
        conversation = yield Call("conversations.retrieve", (conversation_id,))
        summary = conversation.summary or ""
        root = conversation_id
        if conversation.agent_id == self.agent_id and summary.startswith(BRANCH_PREFIX):
            root = summary[len(BRANCH_PREFIX) :].strip() or conversation_id
        ROOTS[conversation_id] = root
        return root

    # ------------------------------------------------------------------------ divergence

    def _replayed(self, conversation_id: str, tail: Sequence[BaseMessage]) -> Plan[bool]:
        """Whether an input with no anchor repeats messages a turn here already stored.

        A LangGraph replay of a thread's first step sends the same state messages (same
        LangChain ids) again; a new turn's messages are new objects with new ids.
        """
        ids = _lc_ids(tail)
        if not ids:
            return False
        if SENT.get(conversation_id, set()) & set(ids):
            return True
        if conversation_id in TIPS or MEMORY_CHECKS.created_here(conversation_id):
            return False  # this process saw every turn it could repeat
        key = replay_key(conversation_id, tail)
        sent = {p["otid"] for p in keyed_otids([{}] * (len(tail) + 2), str(key))}
        first = yield Call(
            "conversations.messages.list",
            (conversation_id,),
            {"order": "asc", "limit": _FIRST_STEP_DEPTH},
        )
        return any(getattr(item, "otid", None) in sent for item in first.items)

    def _diverges(self, conversation_id: str, anchor_id: str) -> Plan[bool]:
        """Whether the conversation holds new input after the anchor (another branch's turns).

        Free when the anchor is the newest message this process saw stored there; else
        one listing of what follows the anchor. The agent's own later steps in the
        anchor's turn (tool steps after a `max_steps` stop) are no divergence.
        """
        if TIPS.get(conversation_id) == anchor_id:
            return False
        made = {"conversation_id": conversation_id, "order": "asc", "after": anchor_id}
        # by creation: a compaction renumbers the positions the conversation's listing uses
        later = list((yield Call("messages.list", (), {**made, "limit": _DIVERGENCE_DEPTH})))
        if any(_is_new_input(item) for item in later):
            return True
        record_tip(conversation_id, later[-1].id if later else anchor_id)
        return False

    # ------------------------------------------------------------------------ forking

    def _fork(
        self, conversation_id: str, messages: Sequence[BaseMessage], anchor: BaseMessage
    ) -> Plan[tuple[str, list[BaseMessage]]]:
        root = yield from self._root(conversation_id)
        server = str(self.client.base_url)
        at_message = FORKS_AT_MESSAGE.get(server, True)
        if at_message:
            fork = yield from self._fork_at(conversation_id, _end(anchor), root)
            FORKS_AT_MESSAGE[server] = fork is not None
            if fork is not None:
                return fork, _relabel(messages, conversation_id, fork)
        return (yield from self._seed(conversation_id, messages))

    def _seed(
        self, conversation_id: str, messages: Sequence[BaseMessage]
    ) -> Plan[tuple[str, list[BaseMessage]]]:
        """A new branch that the whole input is sent to (the shared prefix seeds it)."""
        root = yield from self._root(conversation_id)
        kwargs = {"agent_id": self.agent_id, "summary": branch_tag(root)}
        seeded = yield Call("conversations.create", kwargs=kwargs)
        MEMORY_CHECKS.created(self.agent_id, seeded.id)
        plain = [_as_text(message) for message in messages]
        ROOTS[seeded.id] = root
        _plan(str(seeded.id), plain)
        return str(seeded.id), plain

    def _fork_at(self, conversation_id: str, message_id: str, root: str) -> Plan[str | None]:
        """A fork that ends at `message_id`, or `None` when the server cannot make one."""
        kwargs = {"agent_id": self.agent_id, "message_id": message_id}
        fork = yield Call("conversations.fork", (conversation_id,), kwargs)
        held = (yield Call("conversations.retrieve", (fork.id,))).in_context_message_ids or []
        if not held or held[-1] != message_id:
            yield Call("conversations.delete", (fork.id,))  # a whole copy, not the fork asked
            return None
        yield Call("conversations.update", (fork.id,), {"summary": branch_tag(root)})
        MEMORY_CHECKS.created(self.agent_id, fork.id)
        ROOTS[fork.id] = root
        TIPS[fork.id] = message_id
        return str(fork.id)


def _end(reply: BaseMessage) -> str:
    """The last Letta message of a stored reply (its own id for a one-message reply)."""
    return str(reply.response_metadata.get(LAST_MESSAGE_KEY) or reply.id)


def _lc_ids(messages: Sequence[BaseMessage]) -> tuple[str, ...]:
    return tuple(
        str(m.id) for m in messages if m.id and not str(m.id).startswith(("message-", "lc_run"))
    )


def _plan(conversation_id: str, tail: Sequence[BaseMessage]) -> None:
    """Note the input a turn is about to send (kept once the turn stored it)."""
    PLANNED[conversation_id] = _lc_ids(tail)


def replay_key(conversation_id: str, messages: Sequence[BaseMessage]) -> str | None:
    """The key a first step's `otid` values derive from (`None`: new `otid` values).

    For an input with no Letta message of the conversation whose messages carry
    LangChain ids (a LangGraph thread's first step): the same state messages in the
    same conversation get the same `otid` values, in any process.
    """
    anchor, tail = split_at_stored(messages, conversation_id)
    ids = _lc_ids(tail)
    if anchor is not None or not ids:
        return None
    return "\n".join(["langgraph-first-step", conversation_id, *ids])


def _is_new_input(item: Any) -> bool:
    """Whether `item` is a message the client sent.

    A compaction summary is not: Letta stores it as a user message holding a
    `system_alert`.
    """
    kind = str(item.message_type)
    if kind == "approval_response_message":
        return True
    if kind != "user_message":
        return False
    content = item.content if isinstance(item.content, str) else ""
    return not (content.lstrip().startswith("{") and '"system_alert"' in content)


def _as_text(message: BaseMessage) -> BaseMessage:
    """A seeded approval decision goes as text: its call does not exist in the new branch."""
    if decision_of(message) is None:
        return message
    return message.model_copy(update={"additional_kwargs": {}})


def _relabel(messages: Sequence[BaseMessage], source: str, fork: str) -> list[BaseMessage]:
    """The input with the messages of `source` marked as stored in `fork` (same ids)."""
    relabelled = []
    for message in messages:
        if is_stored_in(message, source):
            metadata = {**message.response_metadata, "conversation_id": fork}
            message = message.model_copy(update={"response_metadata": metadata})
        relabelled.append(message)
    return relabelled
