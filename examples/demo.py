"""The main job: two users talk to one Letta agent, each in their own thread.

The story, step by step (every step checks what it shows; the script exits non-zero
if any check fails):

1. create the demo agent with two memory blocks, or reuse it by name;
2. Alice and Bob chat through ``RunnableWithMessageHistory(ChatLetta, history factory)``:
   each session key gets its own Letta conversation, nothing is stored twice;
3. their threads are isolated: neither sees the other's messages;
4. in Alice's session the agent rewrites its ``human`` memory block with its own memory
   tool, and the very next turn of BOTH sessions sees the new value (memory is shared);
5. "restart": a new process with new objects resumes the same two threads, and edits the
   ``human`` block through the API before it exits;
6. that edit, made by another process, is in the very next turn of this process's
   running sessions (``sync_memory="always"``, the default);
7. page Alice's thread lazily, newest first.

Where it runs:

* ``LETTA_BASE_URL`` set: that server (add ``LETTA_API_KEY`` if it needs one);
* only ``LETTA_API_KEY`` set: Letta Cloud;
* neither: the project's local Letta stack (real server, fake LLM), started if needed.

``LETTA_DEMO_MODEL`` / ``LETTA_DEMO_EMBEDDING`` choose the agent's model handles when the
agent is created; unset, it takes handles the server offers (the local fake LLM, or
``openai/gpt-4o-mini``, first) and says which.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import uuid
import warnings
from typing import Any

from example_setup import (
    DEMO_AGENT,
    DEMO_MEMORY,
    FAKE_MODEL,
    Checks,
    connect,
    letta_for,
    named_agent,
    shown,
)
from langchain_core.runnables.history import RunnableWithMessageHistory

from langchain_letta import ChatLetta, LettaChatMessageHistory

USERS = ("alice", "bob")

# langchain-core 1.x deprecates RunnableWithMessageHistory in favour of LangGraph
# persistence (see examples/langgraph_example.py); many apps still use it, and it works.
warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")


# --------------------------------------------------------------------------- output


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def say(who: str, text: str, reply: str, indent: str = "") -> None:
    print(f"{indent}  {who:>5} > {text}")
    print(f"{indent}  {'agent':>5} < {shorten(reply)}", flush=True)


def shorten(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- setup


def chain_for(agent_id: str, base_url: str, api_key: str | None) -> RunnableWithMessageHistory:
    """The app's chain: ChatLetta, with one LettaChatMessageHistory per session key."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key)
    return RunnableWithMessageHistory(
        model,
        lambda session_id: LettaChatMessageHistory(
            session_id=session_id, agent_id=agent_id, base_url=base_url, api_key=api_key
        ),
    )


def history(user: str, agent_id: str, base_url: str, api_key: str | None) -> Any:
    return LettaChatMessageHistory(
        session_id=user, agent_id=agent_id, base_url=base_url, api_key=api_key
    )


def session(user: str) -> dict[str, Any]:
    return {"configurable": {"session_id": user}}


def count(texts: list[str], text: str) -> int:
    return sum(1 for t in texts if t == text)


# --------------------------------------------------------------------------- the story


def main() -> int:
    base_url, api_key = connect()
    letta = letta_for(base_url, api_key)
    agent = named_agent(letta, DEMO_AGENT, memory_blocks=DEMO_MEMORY)
    agent_id = agent.id
    fake_llm = FAKE_MODEL in (agent.model, getattr(agent.llm_config, "handle", None))
    run = uuid.uuid4().hex[:6]  # marks this run's messages: the demo agent is reused
    print(f"Letta server {shown(base_url)}, agent {agent_id}, run {run}")
    check = Checks()

    step("1. Two users, one agent: each session key is its own Letta conversation")
    chain = chain_for(agent_id, base_url, api_key)
    before = {user: len(history(user, agent_id, base_url, api_key).messages) for user in USERS}
    conversation: dict[str, str] = {}
    for user in USERS:
        for text in (f"Hi, I am {user.title()} (run {run}).", f"{user.title()} likes tea."):
            reply = chain.invoke(text, config=session(user))
            say(user, text, reply.text)
            conversation[user] = reply.response_metadata["conversation_id"]
    for user in USERS:
        print(f"  {user}'s thread: {conversation[user]}")
    check(conversation["alice"] != conversation["bob"], "alice and bob have different threads")

    step("2. The threads are isolated, and nothing is stored twice")
    threads = {user: history(user, agent_id, base_url, api_key) for user in USERS}
    for user, thread in threads.items():
        other = "bob" if user == "alice" else "alice"
        texts = [message.text for message in thread.messages]
        print(f"  {user}'s thread holds {len(texts)} messages ({len(texts) - before[user]} new)")
        check(
            thread.conversation_id == conversation[user],
            f"{user}: the history resolves the session to the same conversation",
        )
        check(
            count(texts, f"Hi, I am {user.title()} (run {run}).") == 1,
            f"{user}: each of this run's messages is stored exactly once",
        )
        check(len(texts) - before[user] == 4, f"{user}: 2 turns stored as 4 messages")
        theirs = {f"Hi, I am {other.title()} (run {run}).", f"{other.title()} likes tea."}
        check(not theirs & set(texts), f"{user}: none of {other}'s messages in the thread")

    step("3. Shared memory: what the agent writes to memory in one session reaches the other")
    value = f"Alice and Bob like tea (run {run})."
    old = letta.agents.blocks.retrieve("human", agent_id=agent_id).value
    edit = json.dumps({"label": "human", "old_string": old, "new_string": value})
    text = (  # the fake LLM runs the memory tool it is told to; a real one is asked
        f"[tool:memory_replace {edit}] Remember this about my friends and me: {value}"
        if fake_llm
        else f"Please store this in your memory about your users: {value}"
    )
    reply = chain.invoke(text, config=session("alice"))
    say("alice", shorten(text, 70), reply.text)
    stored = letta.agents.blocks.retrieve("human", agent_id=agent_id).value
    print(f"  the agent's human block now: {stored!r}")
    if fake_llm:
        check(value in stored, "the agent wrote to its human block from alice's session")
    for user in USERS:
        text = "[memory:human] What does your memory say about your users?"
        reply = chain.invoke(text, config=session(user))
        say(user, text, reply.text)
        if fake_llm:  # the fake LLM reads the block back from the prompt it was given
            check(value in reply.text, f"{user}: the reply quotes the new memory value")
        system = LettaChatMessageHistory(
            conversation_id=conversation[user],
            agent_id=agent_id,
            base_url=base_url,
            api_key=api_key,
            include_system=True,
        )
        prompt = next(system.iter_messages(order="asc", page_size=1))
        check(stored in prompt.text, f"{user}: the thread's system prompt holds the block's value")

    step("4. Restart: a new process, new objects, the same threads")
    sys.stdout.flush()
    resumed = subprocess.run(
        [sys.executable, __file__, "resume", "--run", run, "--agent-id", agent_id],
        env={**os.environ, "LETTA_BASE_URL": base_url, "DEMO_EXPECT": json.dumps(conversation)},
        check=False,
    )
    check(resumed.returncode == 0, "the new process resumed both threads")

    step("5. An API edit made by the other process reaches this process's running sessions")
    edited = letta.agents.blocks.retrieve("human", agent_id=agent_id).value
    print(f"  the human block, as the other process left it: {edited!r}")
    check(f"run {run}" in edited and "API" in edited, "the other process edited the block")
    for user in USERS:
        text = "[memory:human] And what does your memory say now?"
        reply = chain.invoke(text, config=session(user))
        say(user, text, reply.text)
        if fake_llm:
            check(edited in reply.text, f"{user}: this very turn's prompt held the API edit")
        system = LettaChatMessageHistory(
            conversation_id=conversation[user],
            agent_id=agent_id,
            base_url=base_url,
            api_key=api_key,
            include_system=True,
        )
        prompt = next(system.iter_messages(order="asc", page_size=1))
        check(edited in prompt.text, f"{user}: the thread's system prompt holds the API edit")

    step("6. Paging: Alice's thread, newest first, two stored messages per request")
    alice = history("alice", agent_id, base_url, api_key)
    newest = list(itertools.islice(alice.iter_messages(order="desc", page_size=2), 4))
    for message in newest:
        print(f"  {message.type:>5}  {message.id}  {shorten(message.text, 70)}")
    every = list(alice.iter_messages(order="desc", page_size=2))
    oldest_first = alice.messages
    check(
        [m.id for m in every] == [m.id for m in reversed(oldest_first)],
        f"paging newest first yields the whole thread ({len(every)} messages), "
        "none skipped or repeated",
    )
    later = list(alice.iter_messages(after=newest[-1].id))
    check(
        [m.id for m in later] == [m.id for m in reversed(newest[:-1])],
        "iter_messages(after=<id>) yields what came later in the thread",
    )

    return check.report()


def resume(run: str, agent_id: str) -> int:
    """Step 4, in a fresh process: no cache, no state but the Letta server's; then an API edit."""
    base_url = os.environ["LETTA_BASE_URL"]
    api_key = os.environ.get("LETTA_API_KEY") or None
    expected = json.loads(os.environ["DEMO_EXPECT"])
    check = Checks(indent="  ")
    print(f"    (process {os.getpid()}: new ChatLetta, new histories, nothing cached)")
    chain = chain_for(agent_id, base_url, api_key)
    for user in USERS:
        text = f"{user.title()} is back after a restart (run {run})."
        reply = chain.invoke(text, config=session(user))
        say(user, text, reply.text, indent="  ")
        check(
            reply.response_metadata["conversation_id"] == expected[user],
            f"{user}: resumed thread {expected[user]}",
        )
        texts = [m.text for m in history(user, agent_id, base_url, api_key).messages]
        check(
            f"Hi, I am {user.title()} (run {run})." in texts and texts.count(text) == 1,
            f"{user}: the thread holds the earlier turns and the new one, once",
        )
    value = f"Alice and Bob like tea (run {run}); edited through the API by process {os.getpid()}."
    letta_for(base_url, api_key).agents.blocks.update("human", agent_id=agent_id, value=value)
    print(f"    (process {os.getpid()}: the human block edited through the API)")
    return 1 if check.failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command")
    resume_args = sub.add_parser("resume", help="step 4 (run by the demo in a new process)")
    resume_args.add_argument("--run", required=True)
    resume_args.add_argument("--agent-id", required=True)
    args = parser.parse_args()
    sys.exit(resume(args.run, args.agent_id) if args.command == "resume" else main())
