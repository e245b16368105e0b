"""The wheel users install: built from this checkout, installed alone into a clean venv,
it brings exactly its runtime dependencies and runs the README quickstart against the
real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from letta_client import Letta
from uv import find_uv_bin

from tests.conftest import ROOT
from tests.integration_tests.test_readme import FAKE_MODEL, README, python_blocks

pytestmark = pytest.mark.live

RUNTIME = {"langchain-core", "letta-client", "pydantic"}
INSPECT = """
import importlib.metadata as md, json, re
import langchain_letta
requires = md.requires("langchain-letta") or []
print(json.dumps({
    "version": langchain_letta.__version__,
    "requires": sorted(
        re.split(r"[ ;<>=!~\\[]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r
    ),
    "installed": sorted(d.metadata["Name"].lower() for d in md.distributions()),
}))
"""


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def quickstart() -> str:
    """The README's Quickstart blocks as one script, on the local fake LLM's model."""
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = [code for _, code in python_blocks(section)]
    assert len(blocks) == 2, "the quickstart is: create an agent, then talk to it"
    create, talk = blocks
    return create.replace("openai/gpt-4o-mini", FAKE_MODEL) + talk.replace(
        '"agent-..."', "agent.id"
    )


def test_the_wheel_installs_alone_and_runs_the_quickstart(base_url: str, tmp_path: Path) -> None:
    uv = find_uv_bin()
    run([uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)])
    (wheel,) = (tmp_path / "dist").glob("langchain_letta-*.whl")
    venv = tmp_path / "venv"
    run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = str(venv / "bin" / "python")
    run([uv, "pip", "install", "--quiet", "--python", python, str(wheel)])

    facts = json.loads(run([python, "-c", INSPECT], cwd=tmp_path).stdout)
    version = wheel.name.split("-")[1]
    assert facts["version"] == version
    assert set(facts["requires"]) == RUNTIME
    assert not {"pytest", "langgraph", "vcrpy", "langchain-tests"} & set(facts["installed"])

    env = {"LETTA_BASE_URL": base_url, "PATH": "/usr/bin:/bin"}
    done = run([python, "-c", quickstart()], cwd=tmp_path, env=env)
    agent_id, *lines = done.stdout.splitlines()
    try:
        assert agent_id.startswith("agent-")
        assert lines[0] == "Echo: Hi, I am Alice."
        assert "human: Hi, I am Alice." in done.stdout  # after the streamed reply's text
        assert "ai: Echo: Hi, I am Alice." in lines
    finally:
        Letta(base_url=base_url).agents.delete(agent_id)
