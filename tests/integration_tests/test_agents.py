"""LangGraph and langchain 1.x agents against the real server: time travel forks,
create_agent's response_format, helper calls kept out of the thread, approvals as
interrupts, one id per streamed reply."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.factory import _supports_provider_strategy
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import ChatLetta, LettaChatMessageHistory, forks, state
from langchain_letta.approvals import approve, deny, pending_approvals
from langchain_letta.middleware import LettaApprovalMiddleware, LettaCompactionMiddleware

pytestmark = pytest.mark.live

MEMORY_INSERT = (
    '[tool:memory_insert {"label": "human", "new_string": "Likes tea.", "insert_line": -1}]'
)


class WeatherReport(BaseModel):
    """A weather report for a city."""

    city: str
    sky: str


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


def thread(key: str) -> RunnableConfig:
    return {"configurable": {"thread_id": key}}


def stored(letta: Letta, conversation_id: str) -> list[str]:
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=200)
    return [
        item.content if isinstance(item.content, str) else str(item.content)
        for item in page.items
        if item.message_type in {"user_message", "assistant_message"}
    ]


def graph(model: ChatLetta, checkpointer: Any) -> Any:
    def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"], config)]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=checkpointer)


def async_graph(model: ChatLetta, checkpointer: Any) -> Any:
    async def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"], config)]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=checkpointer)


def restart() -> None:
    """What a new process knows: nothing in memory."""
    state.reset()


# --------------------------------------------------------------------------- time travel


def test_a_fork_from_an_old_checkpoint_continues_in_a_branch(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    saver = InMemorySaver()
    app = graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    app.invoke({"messages": [HumanMessage("one")]}, thread("tt"))
    state = app.invoke({"messages": [HumanMessage("two")]}, thread("tt"))
    original = state["messages"][-1].response_metadata["conversation_id"]
    history = list(app.get_state_history(thread("tt")))
    after_one = next(s for s in history if len(s.values["messages"]) == 2 and not s.next)

    forked = app.invoke({"messages": [HumanMessage("three")]}, after_one.config)

    branch = forked["messages"][-1].response_metadata["conversation_id"]
    assert branch != original
    assert stored(letta, original) == ["one", "Echo: one", "two", "Echo: two"]
    assert stored(letta, branch) == ["one", "Echo: one", "three", "Echo: three"]
    assert forked["messages"][-1].text == "Echo: three"
    assert letta.conversations.retrieve(branch).summary == forks.branch_tag(original)

    restart()  # the branch is found again from the state and the server alone
    app = graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    state = app.invoke({"messages": [HumanMessage("four")]}, thread("tt"))

    assert state["messages"][-1].response_metadata["conversation_id"] == branch
    assert stored(letta, branch)[-2:] == ["four", "Echo: four"]
    assert stored(letta, original) == ["one", "Echo: one", "two", "Echo: two"]
    loaded = LettaChatMessageHistory(conversation_id=branch, agent_id=agent_id, base_url=base_url)
    assert [(m.type, m.text) for m in loaded.messages] == [
        (m.type, m.text) for m in state["messages"]
    ]


def test_replaying_a_checkpoint_never_stores_a_turn_twice(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    saver = InMemorySaver()
    app = graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    app.invoke({"messages": [HumanMessage("one")]}, thread("tr"))
    state = app.invoke({"messages": [HumanMessage("two")]}, thread("tr"))
    original = state["messages"][-1].response_metadata["conversation_id"]
    history = list(app.get_state_history(thread("tr")))
    before_two = next(s for s in history if s.next == ("agent",) and len(s.values["messages"]) == 3)

    before_one = next(s for s in history if s.next == ("agent",) and len(s.values["messages"]) == 1)

    replayed = app.invoke(None, before_two.config)
    restart()  # a new process knows the first step only from the checkpoint and the server
    app = graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    first = app.invoke(None, before_one.config)  # the thread's very first step

    branch = replayed["messages"][-1].response_metadata["conversation_id"]
    first_branch = first["messages"][-1].response_metadata["conversation_id"]
    assert stored(letta, original) == ["one", "Echo: one", "two", "Echo: two"]
    assert stored(letta, branch) == ["one", "Echo: one", "two", "Echo: two"]
    assert stored(letta, first_branch) == ["one", "Echo: one"]
    assert len({original, branch, first_branch}) == 3


async def test_async_time_travel_forks_finds_branches_and_replays_as_sync_does(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    saver = InMemorySaver()
    app = async_graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    await app.ainvoke({"messages": [HumanMessage("one")]}, thread("ta"))
    state = await app.ainvoke({"messages": [HumanMessage("two")]}, thread("ta"))
    original = state["messages"][-1].response_metadata["conversation_id"]
    history = [s async for s in app.aget_state_history(thread("ta"))]
    after_one = next(s for s in history if len(s.values["messages"]) == 2 and not s.next)
    before_one = next(s for s in history if s.next == ("agent",) and len(s.values["messages"]) == 1)

    forked = await app.ainvoke({"messages": [HumanMessage("three")]}, after_one.config)
    branch = forked["messages"][-1].response_metadata["conversation_id"]
    restart()  # the branch is found again from the state and the server alone
    app = async_graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    state = await app.ainvoke({"messages": [HumanMessage("four")]}, thread("ta"))
    restart()  # a cold process recognises a replayed first step by its otids
    app = async_graph(ChatLetta(agent_id=agent_id, base_url=base_url), saver)
    first = await app.ainvoke(None, before_one.config)

    first_branch = first["messages"][-1].response_metadata["conversation_id"]
    assert state["messages"][-1].response_metadata["conversation_id"] == branch
    assert stored(letta, original) == ["one", "Echo: one", "two", "Echo: two"]
    assert stored(letta, branch) == [
        "one",
        "Echo: one",
        "three",
        "Echo: three",
        "four",
        "Echo: four",
    ]
    assert letta.conversations.retrieve(branch).summary == forks.branch_tag(original)
    assert stored(letta, first_branch) == ["one", "Echo: one"]
    assert len({original, branch, first_branch}) == 3


def test_plain_turns_never_fork(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    app = graph(model, InMemorySaver())
    for text in ("one", "two"):
        state = app.invoke({"messages": [HumanMessage(text)]}, thread("tp"))
    restart()  # a cold process checks the anchor once and finds no divergence
    state = app.invoke({"messages": [HumanMessage("three")]}, thread("tp"))

    conversation = state["messages"][-1].response_metadata["conversation_id"]
    assert stored(letta, conversation) == [
        "one",
        "Echo: one",
        "two",
        "Echo: two",
        "three",
        "Echo: three",
    ]
    assert len(letta.conversations.list(agent_id=agent_id)) == 1


# --------------------------------------------------------------------------- create_agent


@pytest.mark.parametrize("checkpointer", [None, "memory"])
@pytest.mark.parametrize("tools", [[], [get_weather]], ids=["no-tools", "tools"])
def test_create_agent_response_format_then_a_plain_turn(
    base_url: str, agent_id: str, letta: Letta, checkpointer: str | None, tools: list[Any]
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    agent = create_agent(
        model,
        tools=tools,
        response_format=WeatherReport,
        checkpointer=InMemorySaver() if checkpointer else None,
    )
    ask = '[tool:WeatherReport {"city": "Paris", "sky": "sunny"}] the report, please'
    config: RunnableConfig = {**thread("ca"), "recursion_limit": 10}

    first = agent.invoke({"messages": [HumanMessage(ask)]}, config)
    assert first["structured_response"] == WeatherReport(city="Paris", sky="sunny")

    # the strategy stays the tool strategy on later turns, whatever the model's name
    assert model.profile is not None
    assert model.profile["structured_output"] is False
    assert model.model_name is None
    assert not _supports_provider_strategy(model)

    second = agent.invoke({"messages": [HumanMessage("just chatting")]}, config)
    replies = [m for m in second["messages"] if m.type == "ai"]
    conversation = replies[-1].response_metadata["conversation_id"]
    texts = stored(letta, conversation)
    assert "Echo: just chatting" in [m.text for m in replies]
    if tools:  # the agent may end its turn in text: create_agent stops there
        assert second["messages"][-1].text == "Echo: just chatting"
        assert not any(t.startswith("Answer by calling") for t in texts)
    else:  # with no other tool create_agent asks again: ChatLetta re-asks the agent once
        assert second["structured_response"] == WeatherReport(city="hello", sky="hello")
        assert texts.count("Answer by calling the tool `WeatherReport`.") == 1
        assert texts.count("just chatting") == 1

    if tools:
        tooled = agent.invoke(
            {"messages": [HumanMessage('[tool:get_weather {"city": "Oslo"}] weather?')]}, config
        )
        assert "sunny in Oslo" in tooled["messages"][-1].text


def test_tool_calls_streamed_token_by_token_stay_tool_calls(
    base_url: str, approving_agent: str
) -> None:
    model = ChatLetta(agent_id=approving_agent, base_url=base_url, stream_tokens=True)
    agent = create_agent(model, tools=[], response_format=WeatherReport)

    state = agent.invoke(
        {"messages": [HumanMessage("just chatting")]}, {**thread("tok"), "recursion_limit": 10}
    )
    waiting = model.invoke(f"{MEMORY_INSERT} note", config={"configurable": {"session_id": "t"}})

    assert state["structured_response"] == WeatherReport(city="hello", sky="hello")
    (approval,) = pending_approvals(waiting)  # one call, though it streamed in deltas
    assert (approval.name, approval.args["new_string"]) == ("memory_insert", "Likes tea.")
    blocks = [b for b in waiting.content if isinstance(b, dict)]
    assert [(b["type"], b["name"]) for b in blocks] == [("server_tool_call", "memory_insert")]


# --------------------------------------------------------------------------- helper calls


def test_an_auxiliary_call_stays_out_of_the_thread(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    helper = ChatLetta(agent_id=agent_id, base_url=base_url, auxiliary=True)
    config = thread("aux")
    reply = model.invoke("hello", config=config)
    conversation = reply.response_metadata["conversation_id"]

    summary = helper.invoke("Summarise: hello", config=config)

    assert summary.text == "Echo: Summarise: hello"
    assert summary.response_metadata["conversation_id"] != conversation
    assert stored(letta, conversation) == ["hello", "Echo: hello"]
    assert [c.id for c in letta.conversations.list(agent_id=agent_id)] == [conversation]


def test_compaction_middleware_compacts_on_the_server(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    agent = create_agent(
        model,
        middleware=[LettaCompactionMiddleware(model, trigger=8, keep=2)],
        checkpointer=InMemorySaver(),
    )
    words = ("one", "two", "three", "four", "five")
    for text in words:  # at the fifth turn the state holds 9 messages: compact first
        state = agent.invoke({"messages": [HumanMessage(text)]}, thread("cm"))

    conversation = state["messages"][-1].response_metadata["conversation_id"]
    page = letta.conversations.messages.list(conversation, order="asc", limit=100).items
    summaries = [
        i for i in page if i.message_type == "user_message" and "system_alert" in i.content
    ]
    texts = stored(letta, conversation)
    assert state["messages"][-1].text == "Echo: five"
    assert summaries  # Letta compacted the conversation itself
    # (after a compaction Letta's listing order interleaves: compare as sets of turns)
    assert sorted(t for t in texts if "system_alert" not in t) == sorted(
        text for word in words for text in (word, f"Echo: {word}")
    )  # each turn stored once, no summary sent as a user turn
    assert len(state["messages"]) <= 4  # the graph's state was trimmed to match


# --------------------------------------------------------------------------- approvals


@pytest.fixture
def approving_agent(letta: Letta, agent_id: str) -> str:
    letta.agents.tools.update_approval(
        "memory_insert", agent_id=agent_id, body_requires_approval=True
    )
    return agent_id


def test_a_server_tool_waits_for_approval_and_denial_reaches_the_agent(
    base_url: str, approving_agent: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=approving_agent, base_url=base_url)
    config = {"configurable": {"session_id": "ap"}}

    reply = model.invoke(f"{MEMORY_INSERT} remember this", config=config)

    assert reply.tool_calls == []  # never run locally
    (approval,) = pending_approvals(reply)
    assert (approval.name, approval.args["new_string"]) == ("memory_insert", "Likes tea.")
    assert reply.response_metadata["stop_reason"] == "requires_approval"

    denied = model.invoke([deny(approval, reason="not now")], config=config)
    assert "denied" in denied.text
    assert "not now" in denied.text
    human = letta.agents.blocks.retrieve("human", agent_id=approving_agent).value
    assert "Likes tea." not in human

    again = model.invoke(f"{MEMORY_INSERT} once more", config=config)
    done = model.invoke([approve(pending_approvals(again)[0])], config=config)
    assert pending_approvals(done) == []
    assert "Likes tea." in letta.agents.blocks.retrieve("human", agent_id=approving_agent).value


def test_approvals_are_interrupts_in_create_agent(
    base_url: str, approving_agent: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=approving_agent, base_url=base_url)
    agent = create_agent(
        model, middleware=[LettaApprovalMiddleware()], checkpointer=InMemorySaver()
    )
    config = thread("ai")

    paused = agent.invoke({"messages": [HumanMessage(f"{MEMORY_INSERT} note")]}, config)

    (pending,) = paused["__interrupt__"]
    assert pending.value["name"] == "memory_insert"
    assert pending.value["args"]["new_string"] == "Likes tea."
    resumed = agent.invoke(Command(resume={"approve": False, "reason": "no thanks"}), config)
    assert "no thanks" in resumed["messages"][-1].text
    conversation = resumed["messages"][-1].response_metadata["conversation_id"]
    assert stored(letta, conversation)[0].endswith("note")  # one conversation, one turn
    plain = agent.invoke({"messages": [HumanMessage("thanks")]}, config)
    assert plain["messages"][-1].text == "Echo: thanks"


def test_a_pending_approval_is_settled_after_a_restart(
    base_url: str, approving_agent: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=approving_agent, base_url=base_url)
    config = {"configurable": {"session_id": "ap-restart"}}
    reply = model.invoke(f"{MEMORY_INSERT} remember this", config=config)
    (approval,) = pending_approvals(reply)
    conversation = reply.response_metadata["conversation_id"]

    restart()  # a new process: it never saw the turn that left the approval pending
    plain = ChatLetta(agent_id=approving_agent, base_url=base_url).invoke("hi", config=config)

    assert plain.text == "Echo: hi"
    assert plain.response_metadata["conversation_id"] == conversation
    assert stored(letta, conversation)[-2:] == ["hi", "Echo: hi"]
    assert stored(letta, conversation).count("hi") == 1
    decisions = [
        i
        for i in letta.conversations.messages.list(conversation, order="asc").items
        if i.message_type == "approval_response_message"
    ]
    assert [d.approvals[0].tool_call_id for d in decisions] == [approval.tool_call_id]
    assert decisions[0].approvals[0].approve is False
    assert "Likes tea." not in letta.agents.blocks.retrieve("human", agent_id=approving_agent).value


async def test_an_interrupted_thread_goes_on_after_a_restart(
    base_url: str, approving_agent: str, letta: Letta
) -> None:
    saver = InMemorySaver()
    model = ChatLetta(agent_id=approving_agent, base_url=base_url)
    agent = create_agent(model, middleware=[LettaApprovalMiddleware()], checkpointer=saver)
    config = thread("ai-restart")
    paused = await agent.ainvoke({"messages": [HumanMessage(f"{MEMORY_INSERT} note")]}, config)
    assert paused["__interrupt__"]

    restart()
    model = ChatLetta(agent_id=approving_agent, base_url=base_url)
    agent = create_agent(model, middleware=[LettaApprovalMiddleware()], checkpointer=saver)
    went_on = await agent.ainvoke({"messages": [HumanMessage("never mind")]}, config)

    assert went_on["messages"][-1].text == "Echo: never mind"
    conversation = went_on["messages"][-1].response_metadata["conversation_id"]
    assert stored(letta, conversation)[-2:] == ["never mind", "Echo: never mind"]


# --------------------------------------------------------------------------- stream ids


async def test_every_chunk_of_a_streamed_reply_carries_its_letta_id(
    base_url: str, agent_id: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True)
    config = {"configurable": {"session_id": "ids"}}

    chunks = [c async for c in model.astream("[long:5] five words", config=config)]
    app = graph(model, None)
    streamed = [
        chunk
        for chunk, _ in app.stream(
            {"messages": [HumanMessage("[long:4] four")]}, thread("ids"), stream_mode="messages"
        )
        if isinstance(chunk, AIMessageChunk)
    ]

    ids = {chunk.id for chunk in chunks}
    assert len(chunks) > 2
    assert len(ids) == 1
    (reply_id,) = ids
    assert reply_id is not None
    assert reply_id.startswith("message-")
    history = LettaChatMessageHistory(session_id="ids", agent_id=agent_id, base_url=base_url)
    assert history.messages[1].id == reply_id
    assert len(streamed) > 2
    assert len({chunk.id for chunk in streamed}) == 1
    assert str(streamed[0].id).startswith("message-")


@pytest.mark.parametrize("stream_tokens", [False, True], ids=["steps", "tokens"])
async def test_a_reply_of_several_letta_messages_streams_under_one_id(
    base_url: str, agent_id: str, letta: Letta, stream_tokens: bool
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=stream_tokens)
    config = {"configurable": {"session_id": "several"}}
    search = '[tool:conversation_search {"query": "tea"}] look it up'

    thought = [c async for c in model.astream("[think] ponder", config=config)]
    stepped = [c for c in model.stream(search, config=config)]
    invoked = model.invoke(search, config=config)
    app = graph(model, InMemorySaver())
    in_graph = [
        chunk
        for chunk, _ in app.stream(
            {"messages": [HumanMessage(search)]}, thread("several-graph"), stream_mode="messages"
        )
        if isinstance(chunk, AIMessageChunk)
    ]

    conversation = invoked.response_metadata["conversation_id"]
    rows = letta.conversations.messages.list(conversation, order="asc", limit=100).items
    turns: list[list[Any]] = []
    for row in rows:
        if row.message_type == "user_message":
            turns.append([])
        elif turns:
            turns[-1].append(row)
    second_turn = turns[1]
    assert {r.message_type for r in second_turn} >= {"tool_call_message", "assistant_message"}
    assert len({r.id for r in second_turn}) > 1  # the reply spans several Letta messages
    for chunks in (thought, stepped, in_graph):
        assert len(chunks) > 1
        assert len({chunk.id for chunk in chunks}) == 1
        assert str(chunks[0].id).startswith("message-")
    assert stepped[0].id == second_turn[0].id  # the reply's id: its first Letta message
    merged = sum(stepped[1:], stepped[0])
    assert merged.response_metadata["letta_last_message_id"] == second_turn[-1].id
    history = LettaChatMessageHistory(session_id="several", agent_id=agent_id, base_url=base_url)
    replies = [m for m in history.messages if m.type == "ai"]
    assert [m.id for m in replies] == [thought[0].id, stepped[0].id, invoked.id]
    follow_up = model.invoke([*history.messages, HumanMessage("and then?")], config=config)
    assert follow_up.text == "Echo: and then?"  # the reply's id anchors the next turn
    assert stored(letta, conversation).count(search) == 2  # nothing sent again
