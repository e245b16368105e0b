"""A small app on one existing Letta agent, the way apps are usually written.

The agent's id comes from the environment (``APP_AGENT``), and so does the id of a
conversation the app keeps (``APP_CONVERSATION``); the server comes from
``LETTA_BASE_URL`` (and ``LETTA_API_KEY``), as ``ChatLetta`` reads them by default.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaStore


def agent_id() -> str:
    """The app's agent."""
    return os.environ["APP_AGENT"]


def kept_conversation() -> str:
    """A conversation of the agent whose id the app keeps."""
    return os.environ["APP_CONVERSATION"]


def model() -> ChatLetta:
    """The app's chat model."""
    return ChatLetta(agent_id=agent_id())


def history(session_id: str) -> LettaChatMessageHistory:
    """One user's thread."""
    return LettaChatMessageHistory(session_id=session_id, agent_id=agent_id())


def chain() -> RunnableWithMessageHistory:
    """``RunnableWithMessageHistory`` around ``ChatLetta``: one Letta conversation per session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RunnableWithMessageHistory is deprecated in 1.x
        return RunnableWithMessageHistory(model(), history)


def graph() -> Any:
    """A LangGraph graph whose node calls ``ChatLetta``: ``thread_id`` picks the conversation."""
    letta = model()

    def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [letta.invoke(state["messages"], config)]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=InMemorySaver())


def store() -> LettaStore:
    """The app's long-term memory: a LangGraph store in the agent's archival memory."""
    return LettaStore(agent_id=agent_id())


def notes_graph(memory: LettaStore) -> Any:
    """A graph whose node keeps facts ("remember: <key> = <fact>") and looks them up."""

    def notes(state: MessagesState, runtime: Runtime[None]) -> dict[str, Any]:
        assert runtime.store is not None
        text = str(state["messages"][-1].content)
        if text.startswith("remember:"):
            key, fact = (part.strip() for part in text.removeprefix("remember:").split("=", 1))
            runtime.store.put(("facts",), key, {"fact": fact})
            return {"messages": [AIMessage(f"Stored: {fact}")]}
        hits = runtime.store.search(("facts",), query=text, limit=3)
        found = "; ".join(hit.value["fact"] for hit in hits) or "nothing"
        return {"messages": [AIMessage(f"Found: {found}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("notes", notes)
    builder.add_edge(START, "notes")
    return builder.compile(store=memory)


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It's sunny in {location}."


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str
    punchline: str
