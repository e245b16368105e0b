"""ChatLetta without a server: tracing params, secrets, tool payloads."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import SecretStr

from langchain_letta import ChatLetta
from langchain_letta.calls import send_options
from langchain_letta.messages import TurnChunker, client_return_ids, to_letta_messages

AGENT = "agent-00000000-0000-4000-8000-000000000001"
KEY = "sk-let-very-secret-value"


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "sunny"


def make(**kwargs: object) -> ChatLetta:
    return ChatLetta(agent_id=AGENT, base_url="http://letta.invalid:8283", **kwargs)  # type: ignore[arg-type]


def test_ls_params_name_letta() -> None:
    params = make(model="openai-proxy/fake-llm", temperature=0.2, max_tokens=50)._get_ls_params(
        stop=["x"]
    )

    assert params == {
        "ls_provider": "letta",
        "ls_model_name": "openai-proxy/fake-llm",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 50,
        "ls_stop": ["x"],
    }
    assert make()._get_ls_params()["ls_model_name"] == AGENT
    assert make()._get_ls_params(model="other/model")["ls_model_name"] == "other/model"


def test_api_key_is_hidden_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LETTA_API_KEY", raising=False)
    model = make(api_key=KEY)

    assert isinstance(model.api_key, SecretStr)
    assert model.api_key.get_secret_value() == KEY
    for text in (repr(model), str(model), dumps(model), json.dumps(dumpd(model))):
        assert KEY not in text
    assert dumpd(model)["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["LETTA_API_KEY"]}


def test_api_key_from_env_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETTA_API_KEY", KEY)
    model = make()

    assert model.api_key is not None
    assert model.api_key.get_secret_value() == KEY
    assert KEY not in repr(model)
    assert KEY not in dumps(model)


def test_bind_tools_sends_letta_client_tools() -> None:
    bound = make().bind_tools([get_weather], tool_choice="any")

    tools = bound.kwargs["client_tools"]  # type: ignore[attr-defined]
    assert tools == [
        {
            "name": "get_weather",
            "description": "Get the weather at a location.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        }
    ]


def test_per_call_model_is_a_letta_override() -> None:
    options = send_options({"model": "other/model", "client_tools": [{"name": "t"}]}, make())

    assert options["override_model"] == "other/model"
    assert options["client_tools"] == [{"name": "t"}]


def test_tool_message_after_letta_tool_call_is_an_approval() -> None:
    call = AIMessage(
        "",
        id="message-1",
        tool_calls=[{"name": "get_weather", "args": {}, "id": "call-1", "type": "tool_call"}],
        response_metadata={"conversation_id": "conv-1"},
    )
    result = ToolMessage("sunny", tool_call_id="call-1")
    failed = ToolMessage("no", tool_call_id="call-1", status="error")

    assert to_letta_messages([result], anchor=call) == [
        {
            "type": "approval",
            "approvals": [
                {
                    "type": "tool",
                    "tool_call_id": "call-1",
                    "tool_return": "sunny",
                    "status": "success",
                }
            ],
        }
    ]
    payloads = to_letta_messages([failed], anchor=call)
    assert payloads[0]["approvals"][0]["status"] == "error"
    assert client_return_ids(payloads) == {"call-1"}


def test_tool_message_without_letta_call_is_text_without_random_ids() -> None:
    payloads = to_letta_messages(
        [HumanMessage("hi"), ToolMessage("3", tool_call_id="random-uuid", name="adder")]
    )

    assert payloads[1] == {"role": "user", "content": "Result of adder: 3"}


def test_echo_of_client_tool_result_is_skipped() -> None:
    chunker = TurnChunker("conv-1", AGENT, client_returns=frozenset({"call-1"}))
    echo = SimpleNamespace(
        message_type="tool_return_message",
        id="message-2",
        tool_call_id="call-1",
        status="success",
        tool_return="sunny",
        run_id=None,
    )
    own = SimpleNamespace(
        message_type="tool_return_message",
        id="message-3",
        tool_call_id="call-9",
        status="success",
        tool_return="found",
        run_id=None,
    )

    assert chunker.feed(echo) == []
    assert chunker.feed(own)[0].content[0]["type"] == "server_tool_result"  # type: ignore[index]
