"""The LangGraph recipe: a MessagesState graph whose node calls ChatLetta, keyed by thread_id."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory

pytestmark = pytest.mark.vcr


def build(model: ChatLetta, checkpointer: Any = None) -> Any:
    def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        # ``thread_id`` in the config selects the Letta conversation.
        return {"messages": [model.invoke(state["messages"], config)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_edge(START, "agent")
    return graph.compile(checkpointer=checkpointer)


def thread(key: str) -> RunnableConfig:
    return {"configurable": {"thread_id": key}}


def stored_texts(letta: Letta, conversation_id: str) -> list[str]:
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [
        item.content if isinstance(item.content, str) else str(getattr(item.content[0], "text", ""))
        for item in page.items
        if item.message_type in {"user_message", "assistant_message"}
    ]


@pytest.mark.parametrize("checkpointer", [None, "memory"])
async def test_thread_ids_select_isolated_conversations(
    base_url: str, agent_id: str, letta: Letta, checkpointer: str | None
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    app = build(model, InMemorySaver() if checkpointer else None)

    one = app.invoke({"messages": [HumanMessage("a1")]}, thread("t-a"))
    app.invoke({"messages": [HumanMessage("b1")]}, thread("t-b"))
    two = await app.ainvoke({"messages": [HumanMessage("a2")]}, thread("t-a"))

    assert one["messages"][-1].text == "Echo: a1"
    assert two["messages"][-1].text == "Echo: a2"
    assert len(two["messages"]) == (4 if checkpointer else 2)  # state kept only with one
    conv_a = two["messages"][-1].response_metadata["conversation_id"]
    conv_b = LettaChatMessageHistory(session_id="t-b", agent_id=agent_id, base_url=base_url)
    assert conv_a == one["messages"][-1].response_metadata["conversation_id"]
    assert conv_a != conv_b.conversation_id
    assert stored_texts(letta, conv_a) == ["a1", "Echo: a1", "a2", "Echo: a2"]
    assert [m.text for m in conv_b.messages] == ["b1", "Echo: b1"]
