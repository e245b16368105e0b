"""LettaChatMessageHistory against a real Letta server (replayed from cassettes by default)."""

from __future__ import annotations

from typing import Any

import httpx
import letta_client
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from letta_client import AsyncLetta, Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaHistoryWriteError, state
from langchain_letta.conversation import Order
from langchain_letta.messages import strip_indexes
from langchain_letta.paging import iter_items

ORDERS: tuple[Order, ...] = ("asc", "desc")
TOOL_TURN = '[tool:conversation_search {"query": "hello"}] look it up'


def session(key: str) -> RunnableConfig:
    return {"configurable": {"session_id": key}}


def stored_rows(letta: Letta, conversation_id: str) -> list[tuple[str, str]]:
    """(id, message_type) of every stored item, oldest first, system prompt left out."""
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [(i.id, str(i.message_type)) for i in page.items if i.message_type != "system_message"]


def counting_history(base_url: str, agent_id: str, **options: Any) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    async def acount(request: httpx.Request) -> None:
        count(request)

    history = LettaChatMessageHistory(
        agent_id=agent_id,
        client=Letta(base_url=base_url, http_client=httpx.Client(event_hooks={"request": [count]})),
        async_client=AsyncLetta(
            base_url=base_url, http_client=httpx.AsyncClient(event_hooks={"request": [acount]})
        ),
        **options,
    )
    return history, seen


@pytest.mark.vcr
def test_messages_carry_letta_ids_and_conversation(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    first = model.invoke("hello there", config=session("gina"))
    second = model.invoke("and again", config=session("gina"))
    history = LettaChatMessageHistory(session_id="gina", agent_id=agent_id, base_url=base_url)

    messages = history.messages

    assert [(m.type, m.text) for m in messages] == [
        ("human", "hello there"),
        ("ai", "Echo: hello there"),
        ("human", "and again"),
        ("ai", "Echo: and again"),
    ]
    assert [messages[1].id, messages[3].id] == [first.id, second.id]
    conversation = first.response_metadata["conversation_id"]
    assert history.conversation_id == conversation
    for message in messages:
        assert message.id is not None
        assert message.id.startswith("message-")
        assert message.response_metadata["conversation_id"] == conversation
    with_system = LettaChatMessageHistory(
        conversation_id=conversation, agent_id=agent_id, base_url=base_url, include_system=True
    )
    assert isinstance(with_system.messages[0], SystemMessage)


@pytest.mark.vcr
def test_loaded_turns_look_like_streamed_turns(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    thought = model.invoke("[think] ponder this", config=session("hal"))
    tooled = model.invoke(TOOL_TURN, config=session("hal"))
    chunks = list(model.stream(TOOL_TURN + " again", config=session("hal")))
    merged = sum(chunks[1:], chunks[0])
    assert isinstance(merged, AIMessageChunk)
    # the closing chunk carries the reply's id (its last Letta message, as in the history)
    streamed = strip_indexes(AIMessage(content=merged.content, id=chunks[-1].id))

    loaded = LettaChatMessageHistory(session_id="hal", agent_id=agent_id, base_url=base_url)
    ai = [m for m in loaded.messages if isinstance(m, AIMessage)]

    assert [m.id for m in ai] == [thought.id, tooled.id, streamed.id]
    assert [m.content for m in ai] == [thought.content, tooled.content, streamed.content]
    kinds = [b["type"] for b in ai[1].content if isinstance(b, dict)]
    assert kinds == ["server_tool_call", "server_tool_result", "text"]
    assert [b["type"] for b in ai[0].content if isinstance(b, dict)] == ["reasoning", "text"]
    assert all(m.tool_calls == [] for m in ai)


@pytest.mark.vcr
def test_add_messages_is_a_no_op_for_stored_turns_and_refuses_new_ones(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    reply = model.invoke("store me", config=session("ivy"))
    history = LettaChatMessageHistory(session_id="ivy", agent_id=agent_id, base_url=base_url)
    conversation = reply.response_metadata["conversation_id"]
    before = stored_rows(letta, conversation)

    history.add_messages(history.messages)
    history.add_messages([HumanMessage("store me"), reply])  # RunnableWithMessageHistory's call
    with pytest.raises(LettaHistoryWriteError, match="nothing was written"):
        history.add_messages([HumanMessage("a new question")])
    with pytest.raises(LettaHistoryWriteError):
        history.add_messages([HumanMessage("q"), AIMessage("an answer Letta never gave")])

    assert stored_rows(letta, conversation) == before


@pytest.mark.vcr
def test_clear_starts_a_fresh_conversation_and_keeps_memory(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    old = model.invoke("before clear", config=session("jay")).response_metadata["conversation_id"]
    blocks = {b.label: b.value for b in letta.agents.blocks.list(agent_id=agent_id)}
    history = LettaChatMessageHistory(session_id="jay", agent_id=agent_id, base_url=base_url)
    assert len(history.messages) == 2

    history.clear()

    assert history.conversation_id != old
    assert history.messages == []
    assert {b.label: b.value for b in letta.agents.blocks.list(agent_id=agent_id)} == blocks
    after = model.invoke("[memory] after clear", config=session("jay"))
    assert after.response_metadata["conversation_id"] == history.conversation_id
    blocks_seen = set(after.text.removeprefix("Memory ").split("; "))  # in the server's order
    assert blocks_seen == {"human=Name: Ada", "persona=A concise assistant."}
    with pytest.raises(letta_client.NotFoundError):  # deleted: other replicas follow the key
        letta.conversations.retrieve(old)
    fresh = LettaChatMessageHistory(session_id="jay", agent_id=agent_id, base_url=base_url)
    assert [m.text for m in fresh.messages] == ["[memory] after clear", after.text]


@pytest.mark.vcr
async def test_async_reads(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    for text in ["one", "two", "three"]:
        await model.ainvoke(text, config=session("kim"))
    history = LettaChatMessageHistory(session_id="kim", agent_id=agent_id, base_url=base_url)

    messages = await history.aget_messages()
    newest_first = [m async for m in history.aiter_messages(order="desc", page_size=2)]
    later = [m async for m in history.aiter_messages(after=messages[1].id)]

    assert [m.text for m in messages[::2]] == ["one", "two", "three"]
    assert newest_first == messages[::-1]
    assert later == messages[2:]


# ----------------------------------------------------------------------------- live, long


def fill(letta: Letta, conversation_id: str, stored: int) -> None:
    """Store at least ``stored`` messages fast: several user messages per send, some tool
    turns (several stored rows per turn) and reasoning (two items in one row)."""
    n = 0
    while len(stored_rows_ids(letta, conversation_id)) < stored:
        if n % 5 == 4:
            texts = [f"{TOOL_TURN} {n}"]
        else:
            texts = [f"m{n}-{k}" for k in range(8)] + [f"[think] t{n}"]
        stream = letta.conversations.messages.create(
            conversation_id, messages=[{"role": "user", "content": t} for t in texts]
        )
        for _ in stream:
            pass
        n += 1


def stored_rows_ids(letta: Letta, conversation_id: str) -> set[str]:
    return {item_id for item_id, _ in stored_rows(letta, conversation_id)}


def newest_first(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Stored rows newest first; the items of one row keep their order (as Letta lists)."""
    rows: list[list[tuple[str, str]]] = []
    for key in keys:
        if rows and rows[-1][0][0] == key[0]:
            rows[-1].append(key)
        else:
            rows.append([key])
    return [key for row in reversed(rows) for key in row]


@pytest.mark.live
def test_paging_250_messages_both_ways(base_url: str, agent_id: str, letta: Letta) -> None:
    conversation = letta.conversations.create(agent_id=agent_id).id
    fill(letta, conversation, 250)
    truth = stored_rows(letta, conversation)
    rows = len({item_id for item_id, _ in truth})
    assert rows >= 250
    history = LettaChatMessageHistory(
        conversation_id=conversation, agent_id=agent_id, base_url=base_url
    )
    whole = history.messages

    for page_size in (7, 50, 100):
        for order in ORDERS:
            items = list(iter_items(history._conversations.listing, conversation, order, page_size))
            keys = [(i.id, i.message_type) for i in items if i.message_type != "system_message"]
            assert keys == (truth if order == "asc" else newest_first(truth)), (order, page_size)
            messages = list(history.iter_messages(order=order, page_size=page_size))
            assert messages == (whole if order == "asc" else whole[::-1]), (order, page_size)
    ids = [m.id for m in whole]
    assert len(ids) == len(set(ids))
    middle = whole[len(whole) // 2]
    later = list(history.iter_messages(after=middle.id, page_size=9))
    earlier = list(history.iter_messages(order="desc", before=middle.id, page_size=9))
    assert [*earlier[::-1], middle, *later] == whole
    print(f"\npaged {rows} stored rows ({len(truth)} items) into {len(whole)} messages")


@pytest.mark.live
def test_warm_reads_cost_one_request_whatever_the_length(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    measured = {}
    for label, size in (("short", 10), ("long", 220)):
        conversation = letta.conversations.create(agent_id=agent_id).id
        fill(letta, conversation, size)
        rows = len(stored_rows_ids(letta, conversation))
        state.reset()  # a fresh process
        history, requests = counting_history(base_url, agent_id, conversation_id=conversation)

        assert history.messages
        cold = len(requests)
        requests.clear()
        warm_counts = []
        for _ in range(3):
            assert history.messages
            warm_counts.append(len(requests))
            requests.clear()
        for _ in letta.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "one more"}]
        ):
            pass
        latest = history.messages
        after_turn = len(requests)
        measured[label] = (rows, cold, warm_counts, after_turn)

        assert warm_counts == [1, 1, 1]
        assert after_turn == 1
        assert [m.text for m in latest[-2:]] == ["one more", "Echo: one more"]
    print(f"\nrequests per read (rows, cold, warm x3, after a new turn): {measured}")
