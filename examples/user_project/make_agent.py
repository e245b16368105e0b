"""Create the app's agent and one conversation of it for a recording; print the agent's id.

An app's agent usually exists already; a fresh one per recording keeps a re-recording's
traffic the same as the first one's (no conversations left over from an earlier run). The
conversation is the one ``APP_CONVERSATION`` names (an app that keeps conversation ids).
Both ids go to ``recorded_with.env`` too, so this repo's own test can replay with the very
ids the recording used; export them from there for the recording:

    export LETTA_BASE_URL=http://127.0.0.1:8283
    python make_agent.py && set -a && . ./recorded_with.env && set +a
    pytest --record-mode=rewrite
"""

from __future__ import annotations

import os
from pathlib import Path

from letta_client import Letta

NAME = "user-project-app"


def main() -> None:
    letta = Letta(base_url=os.environ.get("LETTA_BASE_URL", "http://127.0.0.1:8283"))
    for old in letta.agents.list(name=NAME):
        letta.agents.delete(old.id)
    agent = letta.agents.create(
        name=NAME,
        model=os.environ.get("LETTA_EXAMPLE_MODEL", "openai-proxy/fake-llm"),
        embedding=os.environ.get("LETTA_EXAMPLE_EMBEDDING", "openai/text-embedding-3-small"),
        memory_blocks=[
            {"label": "human", "value": "Name: Ada"},
            {"label": "persona", "value": "A concise assistant."},
        ],
    )
    conversation = letta.conversations.create(agent_id=agent.id)
    (Path(__file__).parent / "recorded_with.env").write_text(
        f"APP_AGENT={agent.id}\nAPP_CONVERSATION={conversation.id}\n"
    )
    print(agent.id)


if __name__ == "__main__":
    main()
