"""RunnableWithMessageHistory + ChatLetta + LettaChatMessageHistory: every turn stored once."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable
from langchain_core.runnables.history import RunnableWithMessageHistory
from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaHistoryWriteError

pytestmark = pytest.mark.vcr

SYSTEM = "You are terse."


def chain(shape: str, model: Any, agent_id: str, base_url: str) -> Runnable[Any, Any]:
    def history(session_id: str) -> LettaChatMessageHistory:
        return LettaChatMessageHistory(session_id=session_id, agent_id=agent_id, base_url=base_url)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RunnableWithMessageHistory is deprecated in 1.x
        if shape == "direct":
            return RunnableWithMessageHistory(model, history)
        prompt = ChatPromptTemplate(
            [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{question}")]
        )
        return RunnableWithMessageHistory(
            prompt | model,
            history,
            input_messages_key="question",
            history_messages_key="history",
        )


async def run(runnable: Runnable[Any, Any], mode: str, text: str, key: str) -> str:
    config: Any = {"configurable": {"session_id": key}}
    value: Any = text if _direct(runnable) else {"question": text}
    if mode == "invoke":
        reply = runnable.invoke(value, config)
    elif mode == "ainvoke":
        reply = await runnable.ainvoke(value, config)
    elif mode == "stream":
        chunks = list(runnable.stream(value, config))
        reply = sum(chunks[1:], chunks[0])
    else:
        chunks = [chunk async for chunk in runnable.astream(value, config)]
        reply = sum(chunks[1:], chunks[0])
    assert isinstance(reply, AIMessage | BaseMessage)
    return reply.text


def _direct(runnable: Runnable[Any, Any]) -> bool:
    return getattr(runnable, "input_messages_key", None) is None


def stored(letta: Letta, conversation_id: str) -> list[tuple[str, str]]:
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    result: list[tuple[str, str]] = []
    for item in page.items:
        if item.message_type in {"user_message", "assistant_message"}:
            text = (
                item.content
                if isinstance(item.content, str)
                else str(getattr(item.content[0], "text", ""))
            )
            result.append((str(item.message_type), text))
    return result


def system_rows(letta: Letta, conversation_id: str) -> int:
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return sum(item.message_type == "system_message" for item in page.items)


@pytest.mark.parametrize("shape", ["direct", "prompt"])
@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
async def test_two_sessions_three_turns_each_are_stored_exactly_once(
    base_url: str, agent_id: str, letta: Letta, shape: str, mode: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    runnable = chain(shape, model, agent_id, base_url)

    for turn in range(3):
        for key in ("s1", "s2"):
            reply = await run(runnable, mode, f"{key} turn {turn}", f"{shape}-{mode}-{key}")
            assert reply == f"Echo: {key} turn {turn}"

    conversations = []
    for key in ("s1", "s2"):
        history = LettaChatMessageHistory(
            session_id=f"{shape}-{mode}-{key}", agent_id=agent_id, base_url=base_url
        )
        conversation = history.conversation_id
        assert conversation is not None
        conversations.append(conversation)
        expected = []
        for turn in range(3):
            expected += [
                ("user_message", f"{key} turn {turn}"),
                ("assistant_message", f"Echo: {key} turn {turn}"),
            ]
        assert stored(letta, conversation) == expected
        # The compiled system prompt, plus the prompt's system message sent on turn 1.
        assert system_rows(letta, conversation) == (1 if shape == "direct" else 2)
        assert [m.text for m in history.messages] == [text for _, text in expected]
    assert conversations[0] != conversations[1]


def test_a_non_letta_model_cannot_store_its_turns(
    base_url: str, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    history = LettaChatMessageHistory(session_id="fake", agent_id=agent_id, base_url=base_url)
    with pytest.raises(LettaHistoryWriteError, match="Letta stores a message only by running"):
        history.add_messages([HumanMessage("hello"), AIMessage("not from Letta")])

    # Under RunnableWithMessageHistory the same error is raised inside a run listener,
    # and langchain-core logs listener errors instead of raising them.
    fake = GenericFakeChatModel(messages=iter([AIMessage("not from Letta")]))
    runnable = chain("direct", fake, agent_id, base_url)
    with caplog.at_level(logging.WARNING, logger="langchain_core.callbacks.manager"):
        assert runnable.invoke("hello", {"configurable": {"session_id": "fake"}}).text
    assert "LettaHistoryWriteError" in caplog.text
    assert "Letta stores a message only by running the agent" in caplog.text
    assert history.conversation_id is None  # nothing was created or stored
