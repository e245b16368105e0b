"""Honour or say: every argument does what its name says, or a warning says it does not."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langchain_letta import ChatLetta
from langchain_letta.calls import prepare_call, send_options
from langchain_letta.state import WARNED

AGENT = "agent-00000000-0000-4000-8000-000000000001"
LOGGER = "langchain_letta.chat_models"


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return "sunny"


def make(**kwargs: object) -> ChatLetta:
    return ChatLetta(agent_id=AGENT, base_url="http://letta.invalid:8283", **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    WARNED.clear()
    yield
    WARNED.clear()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def test_model_at_init_is_sent_as_the_runs_model() -> None:
    model = make(model="openai/gpt-4o-mini")

    assert send_options({}, model)["override_model"] == "openai/gpt-4o-mini"
    assert send_options({"model": "other/model"}, model)["override_model"] == "other/model"
    assert "override_model" not in send_options({}, make())
    assert model._get_ls_params()["ls_model_name"] == "openai/gpt-4o-mini"  # what runs


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("temperature", 0.2, "sampling"),
        ("max_tokens", 50, "length"),
        ("stop", ["\n"], "no stop sequences"),
    ],
)
def test_ignored_settings_at_init_are_said_once(
    caplog: pytest.LogCaptureFixture, name: str, value: object, reason: str
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        make(**{name: value})
        make(**{name: value})
        make()

    said = warnings_of(caplog)
    assert len(said) == 1
    assert f"ignores {name} at init" in said[0]
    assert reason in said[0]


def test_ignored_arguments_of_a_call_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    model, messages = make(), [HumanMessage("hi")]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(2):
            prepare_call(messages, {"temperature": 0.5, "max_tokens": 9}, model, stop=["x"])
        prepare_call(messages, {}, model)

    said = warnings_of(caplog)
    assert sorted(said) == sorted(
        [
            f"ChatLetta ignores {name} in a call: {reason}."
            for name, reason in [
                ("temperature", "the agent's model settings on the server govern sampling"),
                (
                    "max_tokens",
                    "the agent's model settings on the server govern the reply's length",
                ),
                ("stop", "Letta has no stop sequences"),
            ]
        ]
    )


@pytest.mark.parametrize("choice", ["any", "required", "get_weather", "none"])
def test_a_tool_choice_that_is_not_enforced_is_said_once(
    caplog: pytest.LogCaptureFixture, choice: str
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        make().bind_tools([get_weather], tool_choice=choice)
        make().bind_tools([get_weather], tool_choice=choice)

    said = warnings_of(caplog)
    assert len(said) == 1
    assert f"tool_choice={choice!r}" in said[0]
    assert "not enforced" in said[0]


@pytest.mark.parametrize("choice", [None, "auto"])
def test_auto_tool_choice_is_honoured_silently(
    caplog: pytest.LogCaptureFixture, choice: str | None
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        make().bind_tools([get_weather], tool_choice=choice)

    assert warnings_of(caplog) == []


def test_settings_left_unset_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        make()
        prepare_call([HumanMessage("hi")], {}, make())

    assert warnings_of(caplog) == []
