"""A langchain 1.x agent (``create_agent``) on a Letta agent: tools, structured output,
an approval as an interrupt, and time travel.

The story, step by step (each step checks itself; the script exits non-zero if one fails):

1. ``create_agent(ChatLetta, tools=[get_weather], response_format=WeatherReport)`` with a
   checkpointer; ``thread_id`` is the Letta session. The agent calls the client-side
   tool ``get_weather``, which runs here, and answers from its result;
2. structured output: the agent answers with a ``WeatherReport`` (through tool calling,
   whatever model the Letta agent runs), and a plain turn works right after;
3. the agent's own memory tool needs approval on this agent: the call becomes a
   LangGraph ``interrupt()`` with the tool's name and arguments, and
   ``Command(resume=...)`` denies it with a reason, in the same conversation;
4. time travel: the thread runs again from the checkpoint after step 1 with a new
   question. Letta continues in a branch of the conversation that holds step 1 and the
   new turn only; the original conversation keeps all its turns.

Where it runs: ``LETTA_BASE_URL`` (+ ``LETTA_API_KEY``), else Letta Cloud when only
``LETTA_API_KEY`` is set, else the project's local Letta stack (started if needed). With
the local fake LLM the bracketed triggers in the messages choose the agent's tool calls;
a real model reads the plain words.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from example_setup import Checks, connect, letta_for, named_agent, shown
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import ChatLetta, LettaChatMessageHistory
from langchain_letta.middleware import LettaApprovalMiddleware

AGENT = "langchain-letta-graph-agent"
"""This example's own agent: its memory tool needs approval, the demo agent's does not."""


class WeatherReport(BaseModel):
    """A weather report for a city."""

    city: str
    sky: str


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"sunny in {city}"


def say(agent: Any, text: str, config: RunnableConfig) -> dict[str, Any]:
    print(f"  user  > {text}")
    state: dict[str, Any] = agent.invoke({"messages": [HumanMessage(text)]}, config)
    if not state.get("__interrupt__"):
        print(f"  agent < {state['messages'][-1].text}")
    return state


def stored_texts(letta: Letta, conversation_id: str) -> list[str]:
    page = letta.conversations.messages.list(conversation_id, order="asc", limit=200)
    return [
        item.content if isinstance(item.content, str) else str(item.content)
        for item in page.items
        if item.message_type in {"user_message", "assistant_message"}
    ]


def main() -> int:
    base_url, api_key = connect()
    letta = letta_for(base_url, api_key)
    agent_id = named_agent(
        letta,
        AGENT,
        memory_blocks=[
            {"label": "human", "value": "The users of this example."},
            {"label": "persona", "value": "A friendly, concise assistant."},
        ],
    ).id
    letta.agents.tools.update_approval(
        "memory_insert", agent_id=agent_id, body_requires_approval=True
    )
    print(f"Letta server {shown(base_url)}, agent {agent_id} (memory_insert needs approval)")
    check = Checks()
    model = ChatLetta(agent_id=agent_id, base_url=base_url, api_key=api_key)
    agent = create_agent(
        model,
        tools=[get_weather],
        response_format=WeatherReport,
        middleware=[LettaApprovalMiddleware()],
        checkpointer=InMemorySaver(),
    )
    config: RunnableConfig = {"configurable": {"thread_id": f"graph-agent-{uuid.uuid4().hex[:6]}"}}

    print("\n== 1. A client-side tool runs here, the agent answers from its result")
    state = say(agent, '[tool:get_weather {"city": "Paris"}] What is the weather in Paris?', config)
    results = [m.text for m in state["messages"] if isinstance(m, ToolMessage)]
    check(results == ["sunny in Paris"], "get_weather ran in this process")
    check("sunny in Paris" in state["messages"][-1].text, "the agent's answer uses the result")
    conversation = state["messages"][-1].response_metadata["conversation_id"]

    print("\n== 2. response_format: a WeatherReport, then a plain turn")
    state = say(agent, '[tool:WeatherReport {"city": "Paris", "sky": "sunny"}] A report.', config)
    report = state.get("structured_response")
    print(f"  structured_response = {report!r}")
    check(report == WeatherReport(city="Paris", sky="sunny"), "a WeatherReport came back")
    state = say(agent, "Thanks!", config)
    check(state["messages"][-1].text == "Echo: Thanks!", "a plain turn works right after")

    print("\n== 3. The agent's memory tool waits for approval: an interrupt")
    ask = '[tool:memory_insert {"label": "human", "new_string": "Likes tea."}] Remember: tea.'
    state = say(agent, ask, config)
    pending = state.get("__interrupt__") or []
    value = pending[0].value if pending else {}
    print(f"  interrupt: {value.get('name')}({value.get('args')})")
    check(value.get("name") == "memory_insert", "the interrupt names the tool")
    check((value.get("args") or {}).get("new_string") == "Likes tea.", "...and its arguments")
    state = agent.invoke(Command(resume={"approve": False, "reason": "not today"}), config)
    reply = state["messages"][-1]
    print(f"  agent < {reply.text}")
    check("not today" in reply.text, "the agent heard the denial and its reason")
    check(reply.response_metadata["conversation_id"] == conversation, "in the same conversation")
    human = letta.agents.blocks.retrieve("human", agent_id=agent_id).value
    check("Likes tea." not in human, "the denied tool did not run")

    print("\n== 4. Time travel: run again from the checkpoint after step 1")
    history = list(agent.get_state_history(config))
    after_one = next(s for s in reversed(history) if s.values.get("messages") and not s.next)
    state = say(agent, "And in Rome?", after_one.config)
    branch = state["messages"][-1].response_metadata["conversation_id"]
    print(f"  original {conversation}, branch {branch}")
    check(branch != conversation, "the new turn went to a branch of the conversation")
    original = stored_texts(letta, conversation)
    check("Thanks!" in original and "And in Rome?" not in original, "the original kept its turns")
    on_branch = stored_texts(letta, branch)
    check(
        "And in Rome?" in on_branch and "Thanks!" not in on_branch,
        "the branch holds step 1 and the new turn only",
    )
    loaded = LettaChatMessageHistory(
        conversation_id=branch, agent_id=agent_id, base_url=base_url, api_key=api_key
    ).messages
    # on a server that forks only whole conversations the branch is seeded with step 1,
    # its tool call and result as text: compare the questions and the newest answer
    asked = [m.text for m in state["messages"] if m.type == "human"]
    seeded = [m.text for m in loaded if m.type == "human" and not m.text.startswith("Result of")]
    check(seeded == asked, "the branch's history asks what the graph's state asks")
    check(loaded[-1].text == state["messages"][-1].text, "...and ends with the same answer")

    return check.report()


if __name__ == "__main__":
    sys.exit(main())
