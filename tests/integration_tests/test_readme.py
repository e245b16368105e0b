"""Every ```python block of README.md runs, in order, against the real server.

Conventions (the README says so too): the blocks run like one script, in one namespace, so
later blocks may use names defined by earlier ones. Before running, ``"agent-..."`` becomes
the id of a fresh test agent, ``openai/gpt-4o-mini`` the local fake LLM's handle and
``http://127.0.0.1:8283`` the live server's URL; ``LETTA_BASE_URL`` points at that server
and the working directory is a temporary one.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from letta_client import Letta

from tests.conftest import ROOT

pytestmark = pytest.mark.live

README = ROOT / "README.md"
FAKE_MODEL = "openai-proxy/fake-llm"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def prepared(code: str, agent_id: str, base_url: str) -> str:
    return (
        code.replace('"agent-..."', repr(agent_id))
        .replace("openai/gpt-4o-mini", FAKE_MODEL)
        .replace("http://127.0.0.1:8283", base_url)
    )


def test_each_feature_section_has_an_example() -> None:
    text = README.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    with_code = {s.split("\n", 1)[0].strip() for s in sections if "```python" in s}

    assert {
        "Quickstart (30 seconds)",
        "Sessions",
        "History and paging",
        "Streaming",
        "Tools",
        "Errors",
        "LangGraph",
        "Configuration and environment variables",
        "Letta Cloud or self-hosted",
    } <= with_code


def test_every_python_block_runs(
    base_url: str,
    agent_id: str,
    letta: Letta,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LETTA_BASE_URL", base_url)
    monkeypatch.chdir(tmp_path)
    agents_before = {agent.id for agent in letta.agents.list(limit=1000)}
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")
            for line, code in python_blocks(README.read_text(encoding="utf-8")):
                source = prepared(code, agent_id, base_url)
                try:
                    exec(compile(source, f"README.md:{line}", "exec"), namespace)
                except Exception as error:
                    pytest.fail(f"README.md block at line {line} failed: {error!r}\n{source}")
    finally:
        for agent in letta.agents.list(limit=1000):
            if agent.id not in agents_before and agent.name == "my-assistant":
                letta.agents.delete(agent.id)

    printed = capsys.readouterr().out
    # The quickstart talked to the agent, and the thread came back.
    assert "Echo: Hi, I am Alice." in printed
    assert "human: Hi, I am Alice." in printed
    # Shared memory: the new block value reached alice's thread.
    history = namespace["LettaChatMessageHistory"](  # type: ignore[operator]
        session_id="alice", agent_id=agent_id, base_url=base_url, include_system=True
    )
    system_prompt = next(history.iter_messages(order="asc", page_size=1))
    assert "Alice and Bob like tea." in system_prompt.text
    # RunnableWithMessageHistory stored two turns as exactly four messages.
    carol = namespace["LettaChatMessageHistory"](  # type: ignore[operator]
        session_id="carol", agent_id=agent_id, base_url=base_url
    )
    assert [m.text for m in carol.messages] == [
        "Hello!",
        "Echo: Hello!",
        "Hello again!",
        "Echo: Hello again!",
    ]
    # The client-side tool ran and the agent used its result.
    assert "It is sunny in Paris." in namespace["answer"].text  # type: ignore[attr-defined]
    # The graph's thread is a session of its own.
    assert namespace["state"]["messages"][-1].text == "Echo: Hi from a graph!"  # type: ignore[index]
    # The session map went to the JSON file.
    assert "frank" in (tmp_path / "sessions.json").read_text(encoding="utf-8")
