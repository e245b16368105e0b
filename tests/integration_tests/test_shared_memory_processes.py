"""Shared memory across worker processes, with default settings, live.

Two worker processes (as ``uvicorn --workers 2`` would run them) serve sessions of one
agent. The agent edits its memory with its own tool in a session of worker A, the API
edits it in between; every session's next turn in both workers sees each edit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from letta_client import Letta

from tests.conftest import ROOT

pytestmark = pytest.mark.live

_WORKER = """
import sys
from langchain_letta import ChatLetta
model = ChatLetta(agent_id=sys.argv[1], base_url=sys.argv[2])
for line in sys.stdin:
    session, text = line.rstrip("\\n").split("\\t", 1)
    reply = model.invoke(text, config={"configurable": {"session_id": session}})
    print(reply.text.replace("\\n", " "), flush=True)
"""


class Worker:
    """A process that runs turns of its own ``ChatLetta``, one per line."""

    def __init__(self, agent_id: str, base_url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, agent_id, base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def turn(self, session: str, text: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{session}\t{text}\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, "the worker died"
        return reply.rstrip("\n")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def workers(agent_id: str, base_url: str) -> Iterator[tuple[Worker, Worker]]:
    pair = (Worker(agent_id, base_url), Worker(agent_id, base_url))
    yield pair
    for worker in pair:
        worker.close()


def test_every_edit_reaches_every_session_of_every_worker(
    workers: tuple[Worker, Worker], agent_id: str, letta: Letta
) -> None:
    a, b = workers
    assert a.turn("alice", "[memory:human]") == "Memory human=Name: Ada"
    assert b.turn("bob", "[memory:human]") == "Memory human=Name: Ada"
    assert a.turn("carol", "[memory:human]") == "Memory human=Name: Ada"

    edit = {"label": "human", "old_string": "Name: Ada", "new_string": "Name: Ada Lovelace"}
    a.turn("alice", f"[tool:memory_replace {json.dumps(edit)}]")  # the agent's own tool, in A

    assert b.turn("bob", "[memory:human]") == "Memory human=Name: Ada Lovelace"
    assert a.turn("carol", "[memory:human]") == "Memory human=Name: Ada Lovelace"

    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")  # the API

    assert a.turn("alice", "[memory:human]") == "Memory human=Name: Grace"
    assert b.turn("bob", "[memory:human]") == "Memory human=Name: Grace"
    assert a.turn("carol", "[memory:human]") == "Memory human=Name: Grace"
