"""LangGraph with a Letta agent: ``thread_id`` in the config is the Letta session.

A ``StateGraph`` whose one node calls ``ChatLetta``. LangGraph's ``thread_id`` selects
the Letta conversation, so each thread is its own conversation on one agent, and Letta
keeps the thread on the server: the graph's checkpointer is optional (with one,
``ChatLetta`` still sends Letta only the new messages).

The script runs two threads, checks they are isolated, streams a reply token by token
out of the graph, and resumes a thread from a new graph with no checkpointer. It exits
non-zero if a check fails.

Where it runs: ``LETTA_BASE_URL`` (+ ``LETTA_API_KEY``), else Letta Cloud when only
``LETTA_API_KEY`` is set, else the project's local Letta stack (started if needed).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from example_setup import DEMO_AGENT, DEMO_MEMORY, Checks, connect, letta_for, named_agent, shown
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from langchain_letta import ChatLetta, LettaChatMessageHistory


def build_graph(model: ChatLetta, checkpointer: Any = None) -> Any:
    """START -> agent: the node hands the state's messages and the config to ChatLetta."""

    def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        # Passing ``config`` on is what routes the call: its thread_id picks the conversation.
        return {"messages": [model.invoke(state["messages"], config)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_edge(START, "agent")
    return graph.compile(checkpointer=checkpointer)


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def main() -> int:
    base_url, api_key = connect()
    letta = letta_for(base_url, api_key)
    agent_id = named_agent(letta, DEMO_AGENT, memory_blocks=DEMO_MEMORY).id
    run = uuid.uuid4().hex[:6]
    threads = {"alice": f"alice-graph-{run}", "bob": f"bob-graph-{run}"}
    print(f"Letta server {shown(base_url)}, agent {agent_id}")
    check = Checks()
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key)

    print("\n== Two LangGraph threads, one Letta agent")
    app = build_graph(model, InMemorySaver())
    conversation = {}
    for user, thread_id in threads.items():
        for text in (f"Hi, I am {user.title()}.", f"What do you know about {user.title()}?"):
            state = app.invoke({"messages": [HumanMessage(text)]}, thread(thread_id))
            reply = state["messages"][-1]
            conversation[user] = reply.response_metadata["conversation_id"]
            print(f"  [{thread_id}] {user} > {text}")
            print(f"  [{thread_id}] agent < {reply.text}")
    print(f"  alice's thread is {conversation['alice']}, bob's {conversation['bob']}")
    check(conversation["alice"] != conversation["bob"], "each thread_id has its own conversation")

    for user, thread_id in threads.items():
        other = "Bob" if user == "alice" else "Alice"
        stored = LettaChatMessageHistory(
            session_id=thread_id, agent_id=agent_id, base_url=base_url, api_key=api_key
        ).messages
        checkpoint = app.get_state(thread(thread_id)).values["messages"]
        print(f"  {thread_id}: {len(stored)} messages in Letta, {len(checkpoint)} in the graph")
        check(
            [(m.type, m.text) for m in stored] == [(m.type, m.text) for m in checkpoint],
            f"{user}: Letta's thread and the graph's state agree, message for message",
        )
        check(not any(other in m.text for m in stored), f"{user}: nothing of {other}'s thread")

    print("\n== Streaming tokens out of the graph (stream_mode='messages')")
    streaming = build_graph(
        ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key, stream_tokens=True)
    )
    pieces = []
    print(f"  [{threads['alice']}] agent < ", end="", flush=True)
    for chunk, _meta in streaming.stream(
        {"messages": [HumanMessage("[long:6] Six words, please.")]},
        thread(threads["alice"]),
        stream_mode="messages",
    ):
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            pieces.append(chunk.text)
            print(chunk.text, end="", flush=True)
    print(f"   ({len(pieces)} chunks)")
    check(len(pieces) > 1, "the reply streamed out of the graph in pieces")

    print("\n== A new graph with no checkpointer resumes the thread from Letta")
    restarted = build_graph(ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key))
    state = restarted.invoke({"messages": [HumanMessage("I am back.")]}, thread(threads["alice"]))
    reply = state["messages"][-1]
    print(f"  [{threads['alice']}] agent < {reply.text}")
    check(
        reply.response_metadata["conversation_id"] == conversation["alice"],
        "the same Letta conversation continues",
    )
    stored = LettaChatMessageHistory(
        session_id=threads["alice"], agent_id=agent_id, base_url=base_url, api_key=api_key
    ).messages
    check(len(stored) == 8, f"Letta holds all 4 of alice's turns ({len(stored)} messages)")

    return check.report()


if __name__ == "__main__":
    sys.exit(main())
