"""Create the app's agent for a recording and print its id (an app's agent usually exists).

A fresh agent per recording keeps a re-recording's traffic the same as the first one's
(no conversations left over from an earlier run). Its id also goes to ``recorded_with.env``
so this repo's own test can replay with the very id the recording used.

    APP_AGENT=$(python make_agent.py) LETTA_BASE_URL=http://127.0.0.1:8283 \
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
    (Path(__file__).parent / "recorded_with.env").write_text(f"APP_AGENT={agent.id}\n")
    print(agent.id)


if __name__ == "__main__":
    main()
