"""When a session's prompt is checked against the agent's memory blocks (pure logic)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from langchain_letta.errors import LettaInputError, LettaResponseError
from langchain_letta.memory import MemoryChecks, behind, check_mode, memory_blocks, system_prompt


def blocks(**values: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(label=label, value=value) for label, value in values.items()]


def test_auto_checks_a_conversation_met_for_the_first_time_then_only_after_a_tool_ran() -> None:
    checks = MemoryChecks(agents=10, conversations=10)
    assert checks.due("auto", "agent-1", "conv-a") == 0

    checks.checked("conv-a", 0, blocks(human="Ada"))
    assert checks.due("auto", "agent-1", "conv-a") is None

    checks.touched("agent-1")
    assert checks.due("auto", "agent-1", "conv-a") == 1
    checks.touched("agent-2")  # another agent's tools do not concern this conversation
    checks.checked("conv-a", 1, blocks(human="Ada"))
    assert checks.due("auto", "agent-1", "conv-a") is None


def test_a_conversation_created_here_needs_no_check_until_a_tool_ran() -> None:
    checks = MemoryChecks(agents=10, conversations=10)
    checks.created("agent-1", "conv-new")

    assert checks.due("auto", "agent-1", "conv-new") is None
    checks.touched("agent-1")
    assert checks.due("auto", "agent-1", "conv-new") == 1
    assert checks.known_blocks("conv-new") is None  # its blocks are read from its prompt


def test_always_checks_every_turn_and_never_checks_none() -> None:
    checks = MemoryChecks(agents=10, conversations=10)
    checks.checked("conv-a", 0, blocks(human="Ada"))

    assert checks.due("always", "agent-1", "conv-a") == 0
    assert checks.due("never", "agent-1", "conv-a") is None
    assert checks.due("never", "agent-1", "conv-unknown") is None


def test_known_blocks_are_compared_with_the_current_ones() -> None:
    checks = MemoryChecks(agents=10, conversations=10)
    checks.checked("conv-a", 0, blocks(human="Ada", persona="Guide"))
    known = checks.known_blocks("conv-a")

    assert not behind(known, blocks(persona="Guide", human="Ada"), prompt=None)
    assert behind(known, blocks(human="Grace", persona="Guide"), prompt=None)
    assert behind(known, blocks(human="Ada"), prompt=None)  # a block removed


def test_unknown_blocks_are_looked_for_in_the_prompt() -> None:
    prompt = "<memory_blocks><human><value>\nAda\n</value></human></memory_blocks>"

    assert not behind(None, blocks(human="Ada"), prompt)
    assert behind(None, blocks(human="Grace"), prompt)
    assert behind(None, blocks(human="Ada"), prompt=None)  # no prompt seen


def test_the_prompt_is_the_system_message_that_opens_the_thread() -> None:
    system = SimpleNamespace(message_type="system_message", content="You are ...")
    user = SimpleNamespace(message_type="user_message", content="hi")

    assert system_prompt([system, user]) == "You are ..."
    assert system_prompt([user]) is None
    assert system_prompt([]) is None


def test_only_server_tool_events_mark_memory_as_possibly_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = MemoryChecks(agents=10, conversations=10)
    checks.checked("conv-a", 0, blocks(human="Ada"))

    for kind in ("ping", "assistant_message", "reasoning_message", "approval_request_message"):
        checks.observe("agent-1", SimpleNamespace(message_type=kind))
    assert checks.due("auto", "agent-1", "conv-a") is None

    checks.observe("agent-1", SimpleNamespace(message_type="tool_return_message"))
    assert checks.due("auto", "agent-1", "conv-a") == 1


def test_the_modes_are_checked() -> None:
    assert check_mode("always") == "always"
    for bad in (True, False, "sometimes", None):
        with pytest.raises(LettaInputError, match="sync_memory must be one of"):
            check_mode(bad)


def test_an_agent_read_gives_its_blocks_and_garbage_is_a_typed_error() -> None:
    agent = {"id": "agent-1", "blocks": [{"label": "human", "value": "Ada", "limit": 5000}]}
    (block,) = memory_blocks(agent)
    assert (block.label, block.value) == ("human", "Ada")
    assert memory_blocks({"blocks": []}) == []
    for garbage in [[], "<html>", {"blocks": "x"}, {"blocks": [{"label": "human"}]}, {}]:
        with pytest.raises(LettaResponseError):
            memory_blocks(garbage)
