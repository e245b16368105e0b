"""A tour of Letta's Conversations API, through langchain-letta where it covers a feature.

Each step prints what it did and checks it; the script exits non-zero if a check fails.

==========================  ====================================================
feature                     how
==========================  ====================================================
create                      ``ChatLetta`` on first use of a session key;
                            ``letta.conversations.create`` for an explicit one
list                        ``letta.conversations.list(agent_id=...)``
retrieve                    ``letta.conversations.retrieve`` (``in_context_message_ids``)
send, streaming             ``ChatLetta(stream_tokens=True).stream(...)``
page history with cursors   ``LettaChatMessageHistory.iter_messages(order, before, after)``
fork                        ``letta.conversations.fork``, then ``ChatLetta`` on the fork
recompile                   ``letta.conversations.recompile`` (``ChatLetta`` does it
                            when the blocks changed; ``sync_memory`` says when it checks)
compact                     ``letta.conversations.messages.compact``
cancel                      a background ``ChatLetta`` turn, ``letta.conversations.cancel``
delete                      ``letta.conversations.delete``; ``ChatLetta`` then raises
                            ``LettaNotFoundError``
==========================  ====================================================

Where it runs: ``LETTA_BASE_URL`` (+ ``LETTA_API_KEY``), else Letta Cloud when only
``LETTA_API_KEY`` is set, else the project's local Letta stack (started if needed).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import letta_client
from example_setup import FAKE_MODEL, Checks, connect, letta_for, named_agent, shown
from langchain_core.exceptions import ModelNotFoundError
from langchain_core.messages import BaseMessage
from letta_client.types import CreateBlockParam

from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaNotFoundError
from langchain_letta.sessions import session_tag

AGENT_NAME = os.environ.get("LETTA_TOUR_AGENT", "langchain-letta-conversations-tour")
MEMORY: list[CreateBlockParam] = [
    {"label": "human", "value": "Someone taking the tour."},
    {"label": "persona", "value": "A concise guide."},
]

_T0 = time.monotonic()


def step(title: str) -> None:
    print(f"\n== {title}  [{time.monotonic() - _T0:.1f}s]", flush=True)


def shorten(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def show(messages: list[BaseMessage], indent: str = "    ") -> None:
    for message in messages:
        print(f"{indent}{message.type:>5}  {shorten(message.text, 80)}")


def model_handle(agent: Any) -> str:
    return str(agent.model or agent.llm_config.handle)


def main() -> int:
    base_url, api_key = connect()
    letta = letta_for(base_url, api_key)
    agent = named_agent(letta, AGENT_NAME, memory_blocks=MEMORY)
    agent_id, handle = agent.id, model_handle(agent)
    fake = handle == FAKE_MODEL
    run = uuid.uuid4().hex[:6]
    print(f"Letta server {shown(base_url)}, agent {agent_id} ({handle}), run {run}")
    check = Checks()
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key)
    created: list[str] = []

    def history(conversation_id: str, **options: Any) -> LettaChatMessageHistory:
        return LettaChatMessageHistory(
            conversation_id=conversation_id,
            agent_id=agent_id,
            base_url=base_url,
            api_key=api_key,
            **options,
        )

    # ------------------------------------------------------------------ create
    step("create: a session key gets its conversation on first use; or create one explicitly")
    session = {"configurable": {"session_id": f"tour-{run}"}}
    reply = model.invoke("Hello from a session key.", config=session)
    by_session = reply.response_metadata["conversation_id"]
    created.append(by_session)
    print(f"  session 'tour-{run}' -> {by_session} (created by ChatLetta)")
    explicit = letta.conversations.create(agent_id=agent_id, summary=f"tour {run}: explicit")
    created.append(explicit.id)
    print(f"  letta.conversations.create(...) -> {explicit.id}")
    check(by_session.startswith("conv-") and by_session != explicit.id, "two conversations")

    # ------------------------------------------------------------------ list
    step("list: the agent's conversations (session keys are tagged in `summary`)")
    listed = {conv.id: conv.summary for conv in letta.conversations.list(agent_id=agent_id)}
    for conversation_id in created:
        print(f"  {conversation_id}  summary={listed.get(conversation_id)!r}")
    check(all(c in listed for c in created), "both are listed")
    check(
        listed.get(by_session) == session_tag(f"tour-{run}"),
        "the session key's tag is in the summary",
    )

    # ------------------------------------------------------------------ send, streaming
    step("send, streaming: ChatLetta(stream_tokens=True) on the explicit conversation")
    streaming = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key, stream_tokens=True)
    chosen = {"configurable": {"conversation_id": explicit.id}}
    prompts = ["[long:8] Tell me something in eight words.", "Second turn.", "Third turn."]
    for prompt in prompts:
        print(f"  you > {prompt}\n  agent < ", end="", flush=True)
        pieces = 0
        for chunk in streaming.stream(prompt, config=chosen):
            if chunk.text:
                pieces += 1
                print(chunk.text, end="", flush=True)
        print(f"   ({pieces} chunks)")
        if prompt.startswith("[long:8]"):
            check(pieces > 1, "the reply arrived token by token")

    # ------------------------------------------------------------------ retrieve
    step("retrieve: in_context_message_ids (only retrieve fills them)")
    retrieved = letta.conversations.retrieve(explicit.id)
    in_context = retrieved.in_context_message_ids or []
    print(f"  {len(in_context)} messages in context, the first one the system prompt")
    check(len(in_context) >= 1 + 2 * len(prompts), "the system prompt and every turn in context")

    # ------------------------------------------------------------------ paging
    step("page history with cursors: newest first, two stored messages per request")
    thread = history(explicit.id)
    everything = thread.messages
    first_page = list(itertools.islice(thread.iter_messages(order="desc", page_size=2), 2))
    print("  newest two:")
    show(first_page)
    next_page = list(
        itertools.islice(
            thread.iter_messages(order="desc", page_size=2, before=first_page[-1].id), 2
        )
    )
    print(f"  before={first_page[-1].id}:")
    show(next_page)
    check(
        [m.id for m in first_page + next_page] == [m.id for m in everything[::-1][:4]],
        "the `before` cursor continues exactly where the first page ended",
    )
    later = list(thread.iter_messages(order="asc", after=everything[1].id))
    check(
        [m.id for m in later] == [m.id for m in everything[2:]],
        "`after` yields the messages later in the thread, oldest first",
    )

    # ------------------------------------------------------------------ fork
    step("fork: a copy of the thread that goes its own way")
    fork = letta.conversations.fork(explicit.id)
    created.append(fork.id)
    print(f"  letta.conversations.fork({explicit.id}) -> {fork.id}")
    check(
        [m.text for m in history(fork.id).messages] == [m.text for m in everything],
        "the fork starts with the same messages",
    )
    reply = model.invoke(
        "Only the fork hears this.", config={"configurable": {"conversation_id": fork.id}}
    )
    print(f"  fork: agent < {shorten(reply.text)}")
    check(
        len(history(fork.id).messages) == len(everything) + 2
        and len(history(explicit.id).messages) == len(everything),
        "a turn on the fork leaves the original untouched",
    )

    # ------------------------------------------------------------------ recompile
    step("recompile: rebuild a thread's system prompt from the current memory blocks")
    value = f"Someone taking the tour (run {run})."
    letta.agents.blocks.update("human", agent_id=agent_id, value=value)
    print(f"  letta.agents.blocks.update('human', value={value!r})")
    frozen = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key, sync_memory="never")
    stale = frozen.invoke("[memory:human] Who am I?", config=chosen)
    print(f"  sync_memory='never': agent < {shorten(stale.text)}")
    if fake:
        check(value not in stale.text, "without recompiling, the thread still sees the old block")
    prompt = json.loads(letta.conversations.recompile(explicit.id))
    print(f"  letta.conversations.recompile(...) -> a {len(prompt)}-character system prompt")
    check(value in prompt, "the recompiled system prompt holds the new value")
    fresh = frozen.invoke("[memory:human] And now?", config=chosen)
    print(f"  after recompile:   agent < {shorten(fresh.text)}")
    if fake:
        check(value in fresh.text, "the next turn sees the new value")
    print("  (sync_memory='always' checks the blocks before every turn and recompiles)")

    # ------------------------------------------------------------------ compact
    step("compact: summarise the fork's context into fewer messages")
    before = len(letta.conversations.retrieve(fork.id).in_context_message_ids or [])
    compacted = letta.conversations.messages.compact(
        fork.id, compaction_settings={"mode": "all", "model": handle}
    )
    after = len(letta.conversations.retrieve(fork.id).in_context_message_ids or [])
    print(
        f"  {compacted.num_messages_before} -> {compacted.num_messages_after} messages; "
        f"summary: {shorten(compacted.summary, 70)}"
    )
    check(after < before, f"fewer messages in context ({before} -> {after})")
    reply = model.invoke(
        "Still there after compaction?", config={"configurable": {"conversation_id": fork.id}}
    )
    print(f"  fork: agent < {shorten(reply.text)}")
    check(bool(reply.text), "the compacted thread keeps working")

    # ------------------------------------------------------------------ cancel
    step("cancel: stop a running background turn")
    background = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key, background=True)
    outcome: dict[str, Any] = {}

    def slow_turn() -> None:
        try:
            outcome["reply"] = background.invoke(
                "[slow:3] Write a long story about a lighthouse.", config=chosen
            )
        except Exception as error:  # reported below
            outcome["error"] = error

    worker = threading.Thread(target=slow_turn)
    worker.start()
    time.sleep(1.0)
    try:
        cancelled: Any = letta.conversations.cancel(explicit.id)
    except letta_client.ConflictError as error:  # 409: no run to cancel (it already ended)
        cancelled = error
    print(f"  letta.conversations.cancel(...) -> {cancelled}")
    worker.join(timeout=60)
    stop_reason = (
        outcome["reply"].response_metadata.get("stop_reason") if "reply" in outcome else None
    )
    print(f"  the background turn ended: stop_reason={stop_reason!r} {outcome.get('error') or ''}")
    check(stop_reason == "cancelled", "the turn was cancelled")

    # ------------------------------------------------------------------ delete
    step("delete: the conversations this tour created")
    for conversation_id in created:
        letta.conversations.delete(conversation_id)
        print(f"  letta.conversations.delete({conversation_id})")
    try:
        model.invoke("Anyone there?", config=chosen)
    except LettaNotFoundError as error:
        caught_both = isinstance(error, ModelNotFoundError) and isinstance(
            error, letta_client.NotFoundError
        )
        check(
            caught_both,
            "ChatLetta raises LettaNotFoundError (a ModelNotFoundError and a "
            "letta_client.NotFoundError)",
        )
    else:
        check(False, "ChatLetta refuses a deleted conversation")
    try:
        letta.conversations.retrieve(explicit.id)
        check(False, "retrieve answers 404 after delete")
    except letta_client.NotFoundError:
        check(True, "retrieve answers 404 after delete")

    return check.report("Tour complete: all checks passed.")


if __name__ == "__main__":
    sys.exit(main())
