"""The app's tests, recorded once against a Letta server and replayed in CI without one.

Record (the agent and conversation exist; here ``make_agent.py`` makes fresh ones)::

    export LETTA_BASE_URL=http://127.0.0.1:8283
    python make_agent.py && set -a && . ./recorded_with.env && set +a
    pytest --record-mode=rewrite

Replay: no server, the network blocked, any host, the same ids or another environment's::

    APP_AGENT=agent-<any uuid> APP_CONVERSATION=conv-<any uuid> \
        LETTA_BASE_URL=http://letta.invalid pytest --block-network

Only ids, otids, the host and the API key may differ between the two; session keys and
texts are the same, so they are fixed strings here.
"""

from __future__ import annotations

import asyncio

import app
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from letta_client import Letta

from langchain_letta import LettaChatMessageHistory

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]


def session(key: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"session_id": key}}


def test_chat_sync_invoke_then_stream() -> None:
    model = app.model()

    first = model.invoke("Hello, I am Ada.", config=session("sync-ada"))
    chunks = list(model.stream("What is my name?", config=session("sync-ada")))

    assert first.text
    assert first.response_metadata["agent_id"] == app.agent_id()
    assert len(chunks) > 1
    stored = app.history("sync-ada").messages
    assert [m.type for m in stored] == ["human", "ai", "human", "ai"]
    assert stored[1].id == first.id
    assert stored[3].text == "".join(chunk.text for chunk in chunks)


async def test_chat_async_invoke_then_stream() -> None:
    model = app.model()

    first = await model.ainvoke("Hello, I am Bob.", config=session("async-bob"))
    chunks = [chunk async for chunk in model.astream("And now?", config=session("async-bob"))]

    assert first.text
    assert len(chunks) > 1
    stored = await app.history("async-bob").aget_messages()
    assert [m.text for m in stored if m.type == "human"] == ["Hello, I am Bob.", "And now?"]
    assert stored[1].id == first.id


async def test_two_sessions_at_once() -> None:
    model = app.model()

    ada, bob = await asyncio.gather(
        model.ainvoke("I am Ada.", config=session("together-ada")),
        model.ainvoke("I am Bob.", config=session("together-bob")),
    )

    assert ada.response_metadata["conversation_id"] != bob.response_metadata["conversation_id"]
    for key, reply, text in (
        ("together-ada", ada, "I am Ada."),
        ("together-bob", bob, "I am Bob."),
    ):
        stored = await app.history(key).aget_messages()
        assert [m.text for m in stored if m.type == "human"] == [text]
        assert stored[-1].id == reply.id


def test_runnable_with_message_history_stores_each_turn_once() -> None:
    chain = app.chain()

    first = chain.invoke("Hello, I am Ada.", config=session("chain-ada"))
    second = chain.invoke("What is my name?", config=session("chain-ada"))

    assert first.text
    assert second.text
    stored = app.history("chain-ada").messages
    assert [m.type for m in stored] == ["human", "ai", "human", "ai"]
    assert [stored[1].id, stored[3].id] == [first.id, second.id]


def test_langgraph_threads_are_conversations() -> None:
    graph = app.graph()
    alice = {"configurable": {"thread_id": "graph-alice"}}
    bob = {"configurable": {"thread_id": "graph-bob"}}

    graph.invoke({"messages": [HumanMessage("Hi, I am Alice.")]}, alice)
    state = graph.invoke({"messages": [HumanMessage("Who am I?")]}, alice)
    other = graph.invoke({"messages": [HumanMessage("Hi, I am Bob.")]}, bob)

    reply, bobs = state["messages"][-1], other["messages"][-1]
    assert [type(m).__name__ for m in state["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert reply.response_metadata["conversation_id"] != bobs.response_metadata["conversation_id"]
    stored = app.history("graph-alice").messages
    assert [m.text for m in stored if m.type == "human"] == ["Hi, I am Alice.", "Who am I?"]
    assert stored[-1].id == reply.id


def test_structured_output() -> None:
    joke = app.model().with_structured_output(app.Joke)

    answer = joke.invoke("[tool] Tell me a joke.", config=session("structured"))

    assert answer == app.Joke(setup="hello", punchline="hello")


def test_client_tool_round_trip() -> None:
    model = app.model().bind_tools([app.get_weather])
    messages: list = [HumanMessage('[tool:get_weather {"location": "Paris"}] weather?')]

    call = model.invoke(messages, config=session("tools"))
    assert isinstance(call, AIMessage)
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [
        ("get_weather", {"location": "Paris"})
    ]
    result = app.get_weather.invoke(call.tool_calls[0])
    assert isinstance(result, ToolMessage)
    answer = model.invoke([*messages, call, result], config=session("tools"))

    assert "It's sunny in Paris." in answer.text
    assert answer.response_metadata["conversation_id"] == call.response_metadata["conversation_id"]


def test_a_kept_conversation_by_id() -> None:
    conversation = app.kept_conversation()
    config = {"configurable": {"conversation_id": conversation}}

    reply = app.model().invoke("Hello there.", config=config)

    assert reply.response_metadata["conversation_id"] == conversation
    stored = LettaChatMessageHistory(conversation_id=conversation, agent_id=app.agent_id())
    assert [m.type for m in stored.messages] == ["human", "ai"]
    assert stored.messages[1].id == reply.id


def test_the_agent_read_back_is_the_apps() -> None:
    letta = Letta()  # LETTA_BASE_URL from the environment, like ChatLetta

    agent = letta.agents.retrieve(app.agent_id())
    human = letta.agents.blocks.retrieve("human", agent_id=app.agent_id())

    assert agent.id == app.agent_id()  # responses carry the test's id back
    assert agent.name == "user-project-app"
    assert human.value == "Name: Ada"


def test_store_keeps_facts_across_threads() -> None:
    store = app.store()
    graph = app.notes_graph(store)

    stored = graph.invoke(
        {"messages": [HumanMessage("remember: tea = Ada drinks green tea")]},
        {"configurable": {"thread_id": "store-alice"}},
    )
    found = graph.invoke(
        {"messages": [HumanMessage("what does Ada drink?")]},
        {"configurable": {"thread_id": "store-bob"}},
    )

    assert stored["messages"][-1].text == "Stored: Ada drinks green tea"
    assert found["messages"][-1].text == "Found: Ada drinks green tea"
    item = store.get(("facts",), "tea")
    assert item is not None
    assert item.value == {"fact": "Ada drinks green tea"}
    assert store.list_namespaces(prefix=("facts",)) == [("facts",)]


async def test_store_async_put_replace_delete() -> None:
    store = app.store()

    await store.aput(("prefs", "ada"), "color", {"likes": "blue"})
    await store.aput(("prefs", "ada"), "color", {"likes": "green"})
    replaced = await store.aget(("prefs", "ada"), "color")
    await store.adelete(("prefs", "ada"), "color")

    assert replaced is not None
    assert replaced.value == {"likes": "green"}
    assert await store.aget(("prefs", "ada"), "color") is None
    assert await store.asearch(("prefs",)) == []
