"""The setup the example scripts share: where the server is, their agent, their checks.

``python examples/<script>.py`` puts ``examples/`` on ``sys.path``, so the scripts import
this module as ``from example_setup import ...``. It is not an example itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from letta_client import Letta
from letta_client.types import AgentState, CreateBlockParam

ROOT = Path(__file__).resolve().parent.parent
FAKE_MODEL = "openai-proxy/fake-llm"
"""The local stack's fake LLM: the examples' default model off Letta Cloud."""

DEMO_AGENT = os.environ.get("LETTA_DEMO_AGENT", "langchain-letta-demo")
"""The agent ``demo.py`` and ``langgraph_example.py`` share, by name."""
DEMO_MEMORY: list[CreateBlockParam] = [
    {"label": "human", "value": "The users of this demo."},
    {"label": "persona", "value": "A friendly, concise assistant."},
]
"""The memory blocks :data:`DEMO_AGENT` is created with."""


def connect() -> tuple[str, str | None]:
    """The server URL and API key.

    ``LETTA_BASE_URL`` (with ``LETTA_API_KEY`` if set); else Letta Cloud when only
    ``LETTA_API_KEY`` is set; else the project's local Letta stack, started if needed.
    """
    api_key = os.environ.get("LETTA_API_KEY") or None
    if os.environ.get("LETTA_BASE_URL"):
        return os.environ["LETTA_BASE_URL"].rstrip("/"), api_key
    if api_key:
        return "https://api.letta.com", api_key
    sys.path.insert(0, str(ROOT))
    from scripts.letta_stack import ensure_up

    print("LETTA_BASE_URL is not set: starting (or reusing) the local Letta stack ...", flush=True)
    return ensure_up(), None


def named_agent(
    letta: Letta, name: str, *, cloud: bool, memory_blocks: Iterable[CreateBlockParam]
) -> AgentState:
    """The agent called ``name``: found by name, else created with ``memory_blocks``.

    A new agent's model is ``LETTA_DEMO_MODEL``, else ``openai/gpt-4o-mini`` on Letta Cloud
    (``cloud``) or the local fake LLM; its embedding ``LETTA_DEMO_EMBEDDING``, else
    ``openai/text-embedding-3-small``.
    """
    for agent in letta.agents.list(name=name):
        print(f"Reusing agent {name!r} ({agent.id})")
        return agent
    model = os.environ.get("LETTA_DEMO_MODEL") or ("openai/gpt-4o-mini" if cloud else FAKE_MODEL)
    created = letta.agents.create(
        name=name,
        model=model,
        embedding=os.environ.get("LETTA_DEMO_EMBEDDING", "openai/text-embedding-3-small"),
        memory_blocks=memory_blocks,
    )
    print(f"Created agent {name!r} ({created.id}) on model {model}")
    return created


class Checks:
    """Prints each check as it happens (``[ok]`` or ``[FAIL]``) and remembers the failures."""

    def __init__(self, indent: str = "") -> None:
        self.indent = indent
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> bool:
        """Report one check; return ``ok``."""
        print(f"{self.indent}  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok

    def report(self, passed: str = "All checks passed.") -> int:
        """Print the verdict after a blank line; return the script's exit code."""
        print()
        if self.failed:
            print(f"FAILED: {len(self.failed)} check(s): " + "; ".join(self.failed))
            return 1
        print(passed)
        return 0
