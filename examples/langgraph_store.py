"""LangGraph long-term memory in a Letta agent: ``LettaStore``.

A graph compiled with ``store=LettaStore(agent_id=...)``. Its node keeps facts with
``store.put`` and looks them up with ``store.search``. The store lives in the agent's
archival memory, so:

1. in thread ``alice`` the node stores a fact;
2. in thread ``bob`` (another Letta conversation) the node finds it with
   ``store.search``;
3. in a third conversation the agent itself recalls it with its
   ``archival_memory_search`` tool (attached by ``store.attach_archival_tools()``);
4. what the agent inserted with ``archival_memory_insert`` shows in the store under
   ``("letta", "archival")``, and a node can edit the agent's core memory through
   ``("letta", "blocks")``.

With the local stack's fake LLM the agent calls a tool when the message carries a
``[tool:<name> <json args>]`` marker; a real model decides by itself. The script exits
non-zero if a check fails.

Where it runs: ``LETTA_BASE_URL`` (+ ``LETTA_API_KEY``), else Letta Cloud when only
``LETTA_API_KEY`` is set, else the project's local Letta stack (started if needed).
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from example_setup import Checks, connect, letta_for, named_agent, shown
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime

from langchain_letta import ChatLetta, LettaStore

STORE_AGENT = "langchain-letta-store-demo"
MEMORY = [
    {"label": "human", "value": "The users of the store demo."},
    {"label": "persona", "value": "A friendly, concise assistant."},
]


def build_graph(store: LettaStore) -> Any:
    """START -> notes: "remember: <fact>" puts the fact, anything else searches for it."""

    def notes(state: MessagesState, runtime: Runtime[None]) -> dict[str, Any]:
        assert runtime.store is not None
        text = str(state["messages"][-1].content)
        if text.lower().startswith("remember:"):
            fact = text.split(":", 1)[1].strip()
            runtime.store.put(("facts", "ada"), uuid.uuid4().hex[:8], {"fact": fact})
            return {"messages": [AIMessage(f"Stored: {fact}")]}
        hits = runtime.store.search(("facts",), query=text, limit=3)
        found = "; ".join(hit.value["fact"] for hit in hits) or "nothing"
        return {"messages": [AIMessage(f"Found: {found}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("notes", notes)
    graph.add_edge(START, "notes")
    return graph.compile(store=store)


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def main() -> int:
    base_url, api_key = connect()
    letta = letta_for(base_url, api_key)
    agent_id = named_agent(letta, STORE_AGENT, memory_blocks=MEMORY).id
    run = uuid.uuid4().hex[:6]
    print(f"Letta server {shown(base_url)}, agent {agent_id}, run {run}")
    check = Checks()

    store = LettaStore(agent_id=agent_id, base_url=base_url, api_key=api_key)
    store.attach_archival_tools()
    graph = build_graph(store)
    fact = f"Ada drinks green tea every morning (run {run})"

    print("\n1. Thread alice: the node stores a fact")
    out = graph.invoke({"messages": [HumanMessage(f"remember: {fact}")]}, thread(f"alice-{run}"))
    print("  ", out["messages"][-1].content)
    stored = store.search(("facts", "ada"), filter={"fact": fact})
    check(len(stored) == 1, "the fact is one item in the store")
    passages = letta.agents.passages.list(agent_id, search=run, limit=10)
    check(any(fact in p.text for p in passages), "the agent's archival memory holds it")

    print("\n2. Thread bob: the node finds it with store.search")
    out = graph.invoke(
        {"messages": [HumanMessage(f"What does Ada drink in the morning? (run {run})")]},
        thread(f"bob-{run}"),
    )
    reply = str(out["messages"][-1].content)
    print("  ", reply)
    check(fact in reply, "bob's thread found alice's fact")

    print("\n3. A third conversation: the agent recalls it with its archival search")
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key)
    args = json.dumps({"query": f"What does Ada drink in the morning? run {run}"})
    answer = model.invoke(
        f"[tool:archival_memory_search {args}] What does Ada drink?", thread(f"carol-{run}")
    )
    print("  ", answer.text[:200])
    check("green tea every morning" in answer.text, "the agent recalled the fact")

    print("\n4. What the agent inserts, the store shows")
    note = f"Ada has a cat called Tom (run {run})"
    insert = json.dumps({"content": note})
    model.invoke(f"[tool:archival_memory_insert {insert}] note this", thread(f"carol-{run}"))
    own = store.search(("letta", "archival"), query=note, limit=5)
    check(any(item.value["text"] == note for item in own), "the agent's note is in the store")
    store.put(("letta", "blocks"), "human", {"value": f"Ada, who drinks green tea (run {run})"})
    block = letta.agents.blocks.retrieve("human", agent_id=agent_id)
    check(run in block.value, "a store put edited the agent's core memory block")

    return check.report()


if __name__ == "__main__":
    sys.exit(main())
