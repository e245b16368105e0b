"""ChatLetta against a real Letta server (replayed from cassettes by default)."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import ModelNotFoundError
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from letta_client import Letta

from langchain_letta import ChatLetta, LettaInputError, LettaNotFoundError, LettaRunError

pytestmark = pytest.mark.vcr


def session(key: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"session_id": key}}


def stored(letta: Letta, conversation_id: str) -> list[tuple[str, str]]:
    """(message_type, text) of what the server holds, oldest first, system prompt left out."""
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    result = []
    for item in items:
        if item.message_type in {"user_message", "assistant_message"}:
            text = item.content if isinstance(item.content, str) else item.content[0].text
            result.append((item.message_type, text))
    return result


def test_sessions_are_isolated_threads(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    first = model.invoke("hello from alice", config=session("alice"))
    model.invoke("hello from bob", config=session("bob"))
    second = model.invoke("alice again", config=session("alice"))

    assert first.text == "Echo: hello from alice"
    alice = first.response_metadata["conversation_id"]
    assert second.response_metadata["conversation_id"] == alice
    assert stored(letta, alice) == [
        ("user_message", "hello from alice"),
        ("assistant_message", "Echo: hello from alice"),
        ("user_message", "alice again"),
        ("assistant_message", "Echo: alice again"),
    ]


def test_invoke_fills_id_usage_and_metadata(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    reply = model.invoke("hi", config=session("meta"))

    assert isinstance(reply, AIMessage)
    assert (reply.id or "").startswith("message-")
    meta = reply.response_metadata
    assert meta["model_provider"] == "letta"
    assert meta["model_name"] == "openai-proxy/fake-llm"
    assert meta["stop_reason"] == "end_turn"
    assert meta["run_id"].startswith("run-")
    assert meta["conversation_id"].startswith("conv-")
    assert meta["agent_id"] == agent_id
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] > 0
    assert reply.usage_metadata["total_tokens"] == (
        reply.usage_metadata["input_tokens"] + reply.usage_metadata["output_tokens"]
    )


def test_stream_tokens_arrive_as_many_chunks(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True)

    chunks = list(model.stream("[long:6] go", config=session("tokens")))

    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) == 6
    merged = sum(chunks[1:], chunks[0])
    assert isinstance(merged, AIMessageChunk)
    assert merged.text == "word1 word2 word3 word4 word5 word6"
    assert (merged.id or "").startswith("message-")
    assert merged.usage_metadata is not None


async def test_async_stream_and_invoke_share_the_session(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    chunks = [chunk async for chunk in model.astream("one", config=session("carol"))]
    reply = await model.ainvoke("two", config=session("carol"))

    first = sum(chunks[1:], chunks[0])
    assert first.text == "Echo: one"
    assert reply.text == "Echo: two"
    assert reply.response_metadata["conversation_id"] == first.response_metadata["conversation_id"]


def test_server_side_tool_is_blocks_not_tool_calls(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    reply = model.invoke('[tool:conversation_search {"query": "x"}] look', config=session("t"))

    assert reply.tool_calls == []
    kinds = [block["type"] for block in reply.content if isinstance(block, dict)]
    assert kinds[:2] == ["server_tool_call", "server_tool_result"]
    assert kinds[-1] == "text"
    call = reply.content[0]
    assert isinstance(call, dict)
    assert call["name"] == "conversation_search"
    assert call["args"] == {"query": "x"}


@pytest.mark.live  # concurrent requests: their order cannot be replayed from a cassette
def test_batch_of_unkeyed_prompts_uses_separate_threads(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    prompts = [f"prompt {i}" for i in range(8)]

    replies = model.batch(prompts, config={"max_concurrency": 4})

    assert [reply.text for reply in replies] == [f"Echo: prompt {i}" for i in range(8)]
    conversations = {reply.response_metadata["conversation_id"] for reply in replies}
    assert len(conversations) == 8


def test_unknown_agent_is_a_typed_not_found(base_url: str, letta: Letta) -> None:
    model = ChatLetta(agent_id="agent-00000000-0000-4000-8000-000000000000", base_url=base_url)

    with pytest.raises(LettaNotFoundError) as raised:
        model.invoke("hi", config=session("nobody"))

    assert isinstance(raised.value, ModelNotFoundError)


def test_llm_failure_in_stream_is_a_typed_run_error(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    with pytest.raises(LettaRunError) as raised:
        model.invoke("[error] please fail", config=session("err"))

    assert raised.value.run_id is not None
    assert raised.value.error_type == "llm_error"


def test_full_input_goes_to_a_new_conversation(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    reply = model.invoke(
        [
            HumanMessage("my name is Eve"),
            AIMessage("Nice to meet you, Eve."),
            HumanMessage("what is my name?"),
        ]
    )

    held = stored(letta, reply.response_metadata["conversation_id"])
    assert held == [
        ("user_message", "my name is Eve"),
        ("assistant_message", "Nice to meet you, Eve."),
        ("user_message", "what is my name?"),
        ("assistant_message", "Echo: what is my name?"),
    ]


def test_empty_input_is_refused_before_anything_is_sent(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    with pytest.raises(LettaInputError):
        model.invoke([HumanMessage("   ")], config=session("empty"))
    with pytest.raises(LettaInputError):
        model.invoke([], config=session("empty"))
