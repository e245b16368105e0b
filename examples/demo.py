"""The main job: two users talk to one Letta agent, each in an isolated thread.

Runs against ``LETTA_BASE_URL`` (with ``LETTA_API_KEY`` for Letta Cloud) or, when that
is not set, against the project's local Letta stack, which it starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from letta_client import Letta

from langchain_letta import ChatLetta, LettaChatMessageHistory

ROOT = Path(__file__).resolve().parent.parent
AGENT_NAME = "langchain-letta-demo"


def server_url() -> str:
    if os.environ.get("LETTA_BASE_URL"):
        return os.environ["LETTA_BASE_URL"]
    sys.path.insert(0, str(ROOT))
    from scripts.letta_stack import ensure_up

    return ensure_up()


def demo_agent(letta: Letta) -> str:
    for agent in letta.agents.list(name=AGENT_NAME):
        return agent.id
    model = os.environ.get("LETTA_DEMO_MODEL", "openai-proxy/fake-llm")
    created = letta.agents.create(
        name=AGENT_NAME,
        model=model,
        embedding=os.environ.get("LETTA_DEMO_EMBEDDING", "openai/text-embedding-3-small"),
        memory_blocks=[
            {"label": "human", "value": "Users of the demo."},
            {"label": "persona", "value": "A friendly, concise assistant."},
        ],
    )
    return created.id


def main() -> int:
    base_url = server_url()
    letta = Letta(base_url=base_url)
    agent_id = demo_agent(letta)
    print(f"Letta server {base_url}, agent {agent_id}")

    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    for user in ("alice", "bob"):
        reply = model.invoke(f"Hi, I am {user}.", config={"configurable": {"session_id": user}})
        print(f"[{user}] {reply.text}")

    threads = {
        user: LettaChatMessageHistory(session_id=user, agent_id=agent_id, base_url=base_url)
        for user in ("alice", "bob")
    }
    ok = threads["alice"].conversation_id != threads["bob"].conversation_id
    for user, history in threads.items():
        texts = [message.text for message in history.messages]
        print(f"[{user}] thread {history.conversation_id}: {len(texts)} messages")
        ok = ok and f"Hi, I am {user}." in texts
        other = "bob" if user == "alice" else "alice"
        ok = ok and not any(other in text for text in texts)
    print("isolated threads: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
