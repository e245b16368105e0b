"""Time travel without a server: when an input diverges, and which branch it goes to."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_letta import forks, state
from langchain_letta.forks import Branches, branch_tag, record_tip
from langchain_letta.turns import keyed_otids

AGENT = "agent-1"


class FakeConversations:
    """Just enough of ``client.conversations`` for :class:`Branches`."""

    def __init__(self, later: list[Any], forks_at_message: bool) -> None:
        self.later = later
        self.forks_at_message = forks_at_message
        self.calls: list[str] = []
        self.summaries: dict[str, str] = {}
        self.messages = SimpleNamespace(list=self._list)

    def _list(self, conversation_id: str, **params: Any) -> Any:
        self.calls.append(f"list {conversation_id} after={params.get('after')}")
        return SimpleNamespace(items=self.later)

    def list_made(self, *, conversation_id: str, **params: Any) -> Any:
        """``client.messages.list``: what a conversation made, by creation."""
        return self._list(conversation_id, **params).items

    def retrieve(self, conversation_id: str) -> Any:
        self.calls.append(f"retrieve {conversation_id}")
        held = ["sys", "message-1"] if self.forks_at_message else ["sys", "message-1", "m-2"]
        return SimpleNamespace(
            agent_id=AGENT,
            summary=self.summaries.get(conversation_id),
            in_context_message_ids=held,
        )

    def fork(self, conversation_id: str, **params: Any) -> Any:
        self.calls.append(f"fork {conversation_id} at={params['message_id']}")
        return SimpleNamespace(id="conv-fork")

    def create(self, agent_id: str, summary: str) -> Any:
        self.calls.append(f"create {summary}")
        return SimpleNamespace(id="conv-seeded")

    def update(self, conversation_id: str, summary: str) -> None:
        self.calls.append(f"update {conversation_id}")
        self.summaries[conversation_id] = summary

    def delete(self, conversation_id: str) -> None:
        self.calls.append(f"delete {conversation_id}")


def branches(later: list[Any], *, forks_at_message: bool = False) -> Branches:
    conversations = FakeConversations(later, forks_at_message)
    client = SimpleNamespace(
        base_url=f"http://server-{forks_at_message}",
        conversations=conversations,
        messages=SimpleNamespace(list=conversations.list_made),
    )
    return Branches(client, AGENT)  # type: ignore[arg-type]


def calls(b: Branches) -> list[str]:
    return b.client.conversations.calls  # type: ignore[attr-defined,no-any-return]


def stored(text: str, message_id: str, conversation_id: str = "conv-a") -> AIMessage:
    return AIMessage(text, id=message_id, response_metadata={"conversation_id": conversation_id})


def row(kind: str, content: str = "") -> Any:
    return SimpleNamespace(message_type=kind, id=f"message-{kind}", content=content)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    state.reset()


INPUT: list[BaseMessage] = [
    HumanMessage("one"),
    stored("Echo: one", "message-1"),
    HumanMessage("new"),
]


def test_the_newest_known_anchor_costs_no_request() -> None:
    b = branches([row("user_message")])
    record_tip("conv-a", "message-1")

    assert b.place("conv-a", INPUT) == ("conv-a", INPUT)
    assert calls(b) == []


def test_agent_steps_after_the_anchor_are_no_divergence() -> None:
    b = branches([row("tool_call_message"), row("tool_return_message")])

    assert b.place("conv-a", INPUT)[0] == "conv-a"
    assert calls(b) == ["list conv-a after=message-1"]
    assert b.place("conv-a", [*INPUT[:2], HumanMessage("again")])[0] == "conv-a"  # tip learned


def test_a_compaction_summary_is_no_divergence() -> None:
    summary = row("user_message", '{"type": "system_alert", "message": "summary"}')

    assert branches([summary]).place("conv-a", INPUT)[0] == "conv-a"


def test_a_later_turn_makes_a_seeded_branch_on_a_server_that_forks_whole_conversations() -> None:
    b = branches([row("user_message")], forks_at_message=False)

    conversation, sent = b.place("conv-a", INPUT)

    assert conversation == "conv-seeded"
    assert sent == INPUT  # the whole input seeds the branch
    assert "delete conv-fork" in calls(b)  # the probe's whole copy is not kept
    assert calls(b)[-1] == f"create {branch_tag('conv-a')}"
    again = branches([row("user_message")], forks_at_message=False)
    again.client = b.client  # same server: no second probe
    calls(b).clear()
    again.place("conv-a", INPUT)
    assert not any(c.startswith("fork") for c in calls(b))


def test_a_server_that_forks_at_the_message_keeps_the_stored_prefix() -> None:
    b = branches([row("user_message")], forks_at_message=True)

    conversation, sent = b.place("conv-a", INPUT)

    assert conversation == "conv-fork"
    assert sent[1].response_metadata["conversation_id"] == "conv-fork"  # same ids, new home
    assert sent[1].id == "message-1"
    assert "update conv-fork" in calls(b)


def test_a_turn_on_a_branch_goes_to_the_branch() -> None:
    b = branches([])
    b.client.conversations.summaries["conv-b"] = branch_tag("conv-a")  # type: ignore[attr-defined]
    on_branch = [
        *INPUT[:2],
        HumanMessage("x"),
        stored("Echo: x", "message-9", "conv-b"),
        HumanMessage("y"),
    ]
    record_tip("conv-b", "message-9")

    assert b.place("conv-a", on_branch)[0] == "conv-b"


def test_a_first_step_has_otids_derived_from_its_langchain_ids_and_conversation() -> None:
    step = [HumanMessage("one", id="lc-1")]

    key = forks.replay_key("conv-a", step)

    assert key is not None
    assert forks.replay_key("conv-a", [HumanMessage("one", id="lc-1")]) == key
    assert forks.replay_key("conv-b", step) != key
    assert forks.replay_key("conv-a", [HumanMessage("one", id="lc-2")]) != key
    assert forks.replay_key("conv-a", [HumanMessage("one")]) is None  # no LangChain id
    assert forks.replay_key("conv-a", [*INPUT, HumanMessage("x", id="lc-3")]) is None  # anchored


def test_a_cold_process_finds_a_replayed_first_step_by_its_otids() -> None:
    step = [HumanMessage("one", id="lc-1")]
    (sent,) = keyed_otids([{}], str(forks.replay_key("conv-a", step)))
    b = branches([SimpleNamespace(message_type="user_message", otid=sent["otid"])])
    b.client.conversations.messages.list = lambda conversation_id, **params: SimpleNamespace(  # type: ignore[attr-defined]
        items=b.client.conversations.later  # type: ignore[attr-defined]
    )

    conversation_id, _ = b.place("conv-a", step)
    assert conversation_id == "conv-seeded"  # a replay goes to a new branch
    other = branches([SimpleNamespace(message_type="user_message", otid="another")])
    other.client.conversations.messages.list = lambda conversation_id, **params: SimpleNamespace(  # type: ignore[attr-defined]
        items=other.client.conversations.later  # type: ignore[attr-defined]
    )
    assert other.place("conv-a", step)[0] == "conv-a"  # a new turn stays


class Awaitable:
    """The async twin of a fake: every method of `fake` as a coroutine."""

    def __init__(self, fake: Any) -> None:
        self._fake = fake

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._fake, name)
        if isinstance(found, SimpleNamespace):
            return Awaitable(found)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return found(*args, **kwargs)

        return call


@pytest.mark.parametrize("forks_at_message", [False, True])
async def test_aplace_makes_the_branch_place_makes_with_the_same_requests(
    forks_at_message: bool,
) -> None:
    sync = branches([row("user_message")], forks_at_message=forks_at_message)
    expected = sync.place("conv-a", INPUT)
    state.reset()
    fake = branches([row("user_message")], forks_at_message=forks_at_message)
    async_client = SimpleNamespace(
        base_url=fake.client.base_url,
        conversations=Awaitable(fake.client.conversations),
        messages=Awaitable(fake.client.messages),  # type: ignore[attr-defined]
    )
    twin = Branches(fake.client, AGENT, async_client)  # type: ignore[arg-type]

    assert await twin.aplace("conv-a", INPUT) == expected
    assert calls(twin) == calls(sync)
