"""The example scripts run end to end against the real server and pass their own checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, live_base_url

pytestmark = pytest.mark.live


def run_example(name: str) -> str:
    """Run ``examples/<name>`` against the live server; return its output (exit 0 asserted)."""
    env = {**os.environ, "LETTA_BASE_URL": live_base_url()}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{output}\n{done.stderr}"
    assert "[FAIL]" not in output
    return output


def test_demo() -> None:
    output = run_example("demo.py")

    for line in (
        "[ok] alice and bob have different threads",
        "[ok] alice: each of this run's messages is stored exactly once",
        "[ok] bob: none of alice's messages in the thread",
        "[ok] the agent wrote to its human block from alice's session",
        "[ok] alice: the reply quotes the new memory value",
        "[ok] bob: the reply quotes the new memory value",
        "[ok] alice: resumed thread conv-",
        "[ok] bob: resumed thread conv-",
        "[ok] the new process resumed both threads",
        "none skipped or repeated",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"
    assert "Alice and Bob like tea (run" in output


def test_conversations_demo() -> None:
    output = run_example("conversations_demo.py")

    for line in (
        "[ok] two conversations",
        "[ok] the reply arrived token by token",
        "[ok] the `before` cursor continues exactly where the first page ended",
        "[ok] a turn on the fork leaves the original untouched",
        "[ok] the recompiled system prompt holds the new value",
        "[ok] fewer messages in context",
        "[ok] the turn was cancelled",
        "[ok] ChatLetta raises LettaNotFoundError",
        "Tour complete: all checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_langgraph_example() -> None:
    output = run_example("langgraph_example.py")

    for line in (
        "[ok] each thread_id has its own conversation",
        "[ok] alice: nothing of Bob's thread",
        "[ok] the reply streamed out of the graph in pieces",
        "[ok] the same Letta conversation continues",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_langgraph_agent_example() -> None:
    output = run_example("langgraph_agent.py")

    for line in (
        "[ok] get_weather ran in this process",
        "[ok] a WeatherReport came back",
        "[ok] a plain turn works right after",
        "[ok] the interrupt names the tool",
        "[ok] the agent heard the denial and its reason",
        "[ok] the denied tool did not run",
        "[ok] the new turn went to a branch of the conversation",
        "[ok] the original kept its turns",
        "[ok] the branch holds step 1 and the new turn only",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"
