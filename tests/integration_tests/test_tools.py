"""Client-side tools end to end: ``bind_tools`` -> Letta ``client_tools`` and back."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import ChatLetta

pytestmark = pytest.mark.vcr


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It's sunny in {location}."


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str
    punchline: str


def kinds(letta: Letta, conversation_id: str) -> list[str]:
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [item.message_type for item in items if item.message_type != "system_message"]


def test_tool_call_round_trip(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])
    question = HumanMessage('[tool:get_weather {"location": "Paris"}] weather?')

    call = model.invoke([question])

    assert isinstance(call, AIMessage)
    assert call.response_metadata["stop_reason"] == "requires_approval"
    assert call.response_metadata["finish_reason"] == "tool_calls"
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [
        ("get_weather", {"location": "Paris"})
    ]
    result = get_weather.invoke(call.tool_calls[0])
    assert isinstance(result, ToolMessage)

    answer = model.invoke([question, call, result])

    assert answer.response_metadata["stop_reason"] == "end_turn"
    assert answer.response_metadata["conversation_id"] == call.response_metadata["conversation_id"]
    assert answer.tool_calls == []
    assert answer.text.startswith("Tool said: ")
    assert "It's sunny in Paris." in answer.text
    # the tool result is not repeated back as a server-side tool block
    assert all(not isinstance(b, dict) or b.get("type") == "text" for b in answer.content)
    assert kinds(letta, call.response_metadata["conversation_id"]) == [
        "user_message",
        "approval_request_message",
        "approval_response_message",
        "tool_return_message",
        "assistant_message",
    ]


def test_tool_call_streams_as_tool_call_chunks(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])

    chunks = list(model.stream('[tool:get_weather {"location": "Oslo"}] go'))

    merged = sum(chunks[1:], chunks[0])
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [
        ("get_weather", {"location": "Oslo"})
    ]


def test_tool_error_status_goes_back_as_error(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])
    question = HumanMessage('[tool:get_weather {"location": "Nowhere"}] weather?')
    call = model.invoke([question])
    failure = ToolMessage(
        "Error: unknown place", tool_call_id=call.tool_calls[0]["id"], status="error"
    )

    answer = model.invoke([question, call, failure])

    assert answer.response_metadata["stop_reason"] == "end_turn"
    assert "unknown place" in answer.text


async def test_async_tool_round_trip(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])
    question = HumanMessage("[tool] what is the weather?")

    call = await model.ainvoke([question])
    assert call.tool_calls[0]["name"] == "get_weather"
    result = await get_weather.ainvoke(call.tool_calls[0])
    answer = await model.ainvoke([question, call, result])

    assert "It's sunny in hello." in answer.text


def test_with_structured_output(base_url: str, agent_id: str) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)

    joke = model.with_structured_output(Joke).invoke("[tool] Tell me a joke.")

    assert joke == Joke(setup="hello", punchline="hello")


def test_langgraph_tool_loop_completes(base_url: str, agent_id: str) -> None:
    langgraph = pytest.importorskip("langgraph.prebuilt")
    from langgraph.graph import END, START, MessagesState, StateGraph

    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", langgraph.ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", langgraph.tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")

    state = graph.compile().invoke(
        {"messages": [HumanMessage('[tool:get_weather {"location": "Rome"}] weather?')]}
    )

    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert "It's sunny in Rome." in messages[-1].text


def _png() -> str:
    """A 1x1 PNG, base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def test_base64_image_input(base_url: str, agent_id: str, letta: Letta) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    data = _png()
    standard = HumanMessage(
        content=[
            {"type": "text", "text": "Describe this image."},
            {"type": "image", "base64": data, "mime_type": "image/png"},
        ]
    )
    openai_style = HumanMessage(
        content=[
            {"type": "text", "text": "And this one."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        ]
    )

    first = model.invoke([standard])
    second = model.invoke([openai_style])

    assert first.text == "Echo: Describe this image."
    assert second.text == "Echo: And this one."
    items = letta.conversations.messages.list(
        first.response_metadata["conversation_id"], order="asc", limit=100
    )
    user = next(item for item in items if item.message_type == "user_message")
    assert [part.type for part in user.content] == ["text", "image"]
