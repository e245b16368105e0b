"""Pure parts of the agent support: profile, strategy choice, approvals, chunk ids."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from langchain.agents.factory import _supports_provider_strategy
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_letta import ChatLetta, LettaInputError
from langchain_letta.approvals import (
    LettaApproval,
    PendingCalls,
    approve,
    deny,
    pending_approvals,
)
from langchain_letta.messages import TurnChunker, client_return_ids, to_letta_messages
from langchain_letta.tool_choice import forced_tools, reask

AGENT = "agent-00000000-0000-4000-8000-000000000001"


def make(**kwargs: Any) -> ChatLetta:
    return ChatLetta(agent_id=AGENT, base_url="http://letta.invalid:8283", **kwargs)


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return "sunny"


def test_profile_declares_tool_calling_and_no_native_structured_output() -> None:
    profile = make().profile

    assert profile is not None
    assert profile["tool_calling"] is True
    assert profile["structured_output"] is False
    assert profile["tool_choice"] is False


def test_the_learned_model_never_switches_create_agents_strategy() -> None:
    model = make()
    model._engine.agent.note(SimpleNamespace(model="openai/gpt-4o-mini", llm_config=None))

    assert model.model_name is None
    assert model._engine.model_label() == "openai/gpt-4o-mini"  # still named in traces
    assert _supports_provider_strategy(model) is False


def test_bind_tools_refuses_a_response_format_clearly() -> None:
    with pytest.raises(LettaInputError, match="ToolStrategy"):
        make().bind_tools([get_weather], response_format={"type": "json_schema"})
    make().bind_tools([get_weather], response_format=None, strict=True)  # accepted


def approval_event(name: str, call_id: str = "call-1") -> Any:
    call = SimpleNamespace(name=name, arguments='{"city": "Oslo"}', tool_call_id=call_id)
    return SimpleNamespace(
        message_type="approval_request_message",
        id="message-a",
        tool_call=call,
        tool_calls=[call],
        run_id=None,
    )


def test_a_server_tool_waiting_for_approval_is_no_tool_call() -> None:
    chunker = TurnChunker("conv-1", AGENT, client_tools=frozenset({"get_weather"}))
    chunks = chunker.feed(approval_event("memory_insert"))
    chunker.feed(SimpleNamespace(message_type="stop_reason", stop_reason="requires_approval"))
    reply = sum(chunks[1:], chunks[0]) + chunker.finish()

    assert reply.tool_calls == []
    (approval,) = pending_approvals(reply)
    assert approval == LettaApproval("call-1", "memory_insert", {"city": "Oslo"}, "conv-1")
    assert chunker.requests[0]["server_side"] is True


def test_a_client_tool_request_stays_a_tool_call() -> None:
    chunker = TurnChunker("conv-1", AGENT, client_tools=frozenset({"get_weather"}))
    (chunk,) = chunker.feed(approval_event("get_weather"))

    assert chunk.tool_call_chunks[0]["name"] == "get_weather"
    assert pending_approvals(chunker.finish()) == []


def test_decisions_become_letta_approvals_wherever_they_stand() -> None:
    approval = LettaApproval("call-1", "memory_insert", {}, "conv-1")

    payloads = to_letta_messages([deny(approval, reason="not now"), HumanMessage("and?")])

    assert payloads[0] == {
        "type": "approval",
        "approvals": [
            {"type": "approval", "tool_call_id": "call-1", "approve": False, "reason": "not now"}
        ],
    }
    assert client_return_ids(payloads) == frozenset()  # the tool's result is the agent's own
    approved = to_letta_messages([approve(approval)])[0]["approvals"][0]
    assert approved == {"type": "approval", "tool_call_id": "call-1", "approve": True}


def test_calls_left_pending_are_answered_before_the_next_turn() -> None:
    pending = PendingCalls(10_000)
    pending.record(
        "conv-1",
        [
            {"tool_call_id": "c1", "server_side": False},
            {"tool_call_id": "c2", "server_side": True},
        ],
    )
    user = {"role": "user", "content": "hi"}

    sent = pending.answer_waiting_calls("conv-1", [user])

    answers = sent[0]["approvals"]
    assert [(a["type"], a["tool_call_id"]) for a in answers] == [("tool", "c1"), ("approval", "c2")]
    assert answers[0]["status"] == "error"
    assert answers[1]["approve"] is False
    assert sent[1] == user
    assert pending.answer_waiting_calls("conv-1", [user]) == [user]  # answered once


def test_calls_answered_by_the_input_are_not_answered_again() -> None:
    pending = PendingCalls(10_000)
    pending.record("conv-1", [{"tool_call_id": "c1", "server_side": False}])
    answer = {"type": "approval", "approvals": [{"type": "tool", "tool_call_id": "c1"}]}

    assert pending.answer_waiting_calls("conv-1", [answer]) == [answer]


def test_every_chunk_carries_the_id_of_its_letta_message() -> None:
    chunker = TurnChunker("conv-1", AGENT)
    deltas = [
        SimpleNamespace(message_type="assistant_message", id="message-r", content=piece)
        for piece in ("a ", "b ", "c")
    ]
    chunks = [chunk for event in deltas for chunk in chunker.feed(event)]
    closing = chunker.finish()

    assert {chunk.id for chunk in [*chunks, closing]} == {"message-r"}


def test_approve_takes_an_approval_only() -> None:
    with pytest.raises(LettaInputError):
        approve(AIMessage("x"))  # type: ignore[arg-type]
    assert isinstance(deny(LettaApproval("c", "t", {})), ToolMessage)


@pytest.mark.parametrize(
    ("choice", "forced"),
    [
        ("any", ["get_weather", "Report"]),
        ("required", ["get_weather", "Report"]),
        ("Report", ["Report"]),
        ({"type": "function", "function": {"name": "Report"}}, ["Report"]),
        ("auto", None),
        ("none", None),
        (None, None),
    ],
)
def test_a_forcing_tool_choice_names_the_tools_it_forces(choice: Any, forced: Any) -> None:
    assert forced_tools(choice, ["get_weather", "Report"]) == forced


def test_a_forced_tool_is_asked_for_again_only_after_the_agents_text_reply() -> None:
    text_reply = AIMessage("Echo: hi", id="message-1")
    call_reply = AIMessage(
        "", id="message-2", tool_calls=[{"name": "Report", "args": {}, "id": "c"}]
    )
    human = HumanMessage("hi")

    (*_, asked) = reask([human, text_reply], ["Report"])

    assert asked.type == "human"
    assert asked.text == "Answer by calling the tool `Report`."
    assert reask([human, text_reply], None) == [human, text_reply]
    assert reask([human], ["Report"]) == [human]
    assert reask([human, call_reply], ["Report"]) == [human, call_reply]
    assert reask([human, AIMessage("not Letta's")], ["Report"])[-1].type == "ai"


def test_bind_tools_carries_a_forced_choice_out_of_the_invocation_params() -> None:
    bound = make().bind_tools([get_weather], tool_choice="any")

    assert bound.kwargs["letta_forced_tools"] == ["get_weather"]  # type: ignore[attr-defined]
    assert "letta_forced_tools" not in make()._get_invocation_params(**bound.kwargs)  # type: ignore[attr-defined]
