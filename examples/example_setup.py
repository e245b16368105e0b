"""The setup the example scripts share: where the server is, their agent, their checks.

``python examples/<script>.py`` puts ``examples/`` on ``sys.path``, so the scripts import
this module as ``from example_setup import ...``. It is not an example itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import letta_client
from letta_client import Letta
from letta_client.types import AgentState, CreateBlockParam

from langchain_letta import LettaInputError
from langchain_letta.clients import shared_clients
from langchain_letta.connection import resolve_endpoint

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
        base_url = os.environ["LETTA_BASE_URL"].strip()
        try:
            resolve_endpoint(base_url, api_key)
        except LettaInputError as error:
            raise SystemExit(f"LETTA_BASE_URL: {error}") from None
        return base_url, api_key
    if api_key:
        return "https://api.letta.com", api_key
    sys.path.insert(0, str(ROOT))
    from scripts.letta_stack import StackError, ensure_up

    print("LETTA_BASE_URL is not set: starting (or reusing) the local Letta stack ...", flush=True)
    try:
        return ensure_up(), None
    except StackError as error:  # a port taken, a failed install: one line, not a traceback
        raise SystemExit(
            f"The local Letta stack did not start: {str(error).splitlines()[0]}"
        ) from None


def letta_for(base_url: str, api_key: str | None) -> Letta:
    """The letta-client ``ChatLetta(base_url=..., api_key=...)`` uses, for the scripts' setup.

    Credentials inside ``base_url`` (``https://user:pass@host``, ``?api_key=...``) are
    split off as ``langchain-letta`` splits them, and the connections are the package's.
    """
    letta, _ = shared_clients(resolve_endpoint(base_url, api_key), timeout=None, max_retries=2)
    return letta


def shown(base_url: str) -> str:
    """``base_url`` without the credentials it may carry, to print."""
    return resolve_endpoint(base_url, None).url


def named_agent(
    letta: Letta, name: str, *, memory_blocks: Iterable[CreateBlockParam]
) -> AgentState:
    """The agent called ``name``: found by name, else created with ``memory_blocks``.

    A new agent's model and embedding are ``LETTA_DEMO_MODEL`` and ``LETTA_DEMO_EMBEDDING``,
    else handles the server offers (see :func:`pick`). A server that cannot be reached or
    refuses the agent ends the script with one line saying what to set, never a traceback.
    """
    try:
        for agent in letta.agents.list(name=name):
            print(f"Reusing agent {name!r} ({agent.id})")
            return agent
        models = [m.handle for m in letta.models.list() if m.handle]
        embeddings = [e.handle for e in letta.models.embeddings.list() if e.handle]
    except letta_client.APIError as error:
        raise SystemExit(
            f"Cannot use the Letta server at {shown(str(letta.base_url))}: {one_line(error)}"
        ) from None
    except Exception as error:  # a server that answers, but not as Letta does
        raise SystemExit(
            f"The server at {shown(str(letta.base_url))} does not answer as a Letta server "
            f"({type(error).__name__}: {one_line(error)}); check LETTA_BASE_URL"
        ) from None
    model = chosen("LETTA_DEMO_MODEL", "chat model", models, MODEL_PREFERENCE)
    embedding = chosen("LETTA_DEMO_EMBEDDING", "embedding", embeddings, EMBEDDING_PREFERENCE)
    try:
        created = letta.agents.create(
            name=name, model=model, embedding=embedding, memory_blocks=memory_blocks
        )
    except letta_client.APIError as error:
        raise SystemExit(
            f"The server refused an agent on model {model} with embedding {embedding} "
            f"({one_line(error)}); set LETTA_DEMO_MODEL to one of: {', '.join(models)}"
            f" and LETTA_DEMO_EMBEDDING to one of: {', '.join(embeddings)}"
        ) from None
    print(f"Created agent {name!r} ({created.id}) on model {model}")
    return created


MODEL_PREFERENCE = (FAKE_MODEL, "openai/gpt-4o-mini")
"""Chat models the examples take first when the server offers them."""
EMBEDDING_PREFERENCE = ("openai/text-embedding-3-small",)
"""Embeddings the examples take first when the server offers them."""
LAST_RESORT = "letta/"
"""Letta's own hosted free handles (``letta/letta-free``) come after every other."""


def pick(offered: list[str], preferred: Iterable[str]) -> str | None:
    """The first ``preferred`` handle offered, else the first other one, ``letta/...`` last."""
    for handle in preferred:
        if handle in offered:
            return handle
    ranked = sorted(offered, key=lambda handle: handle.startswith(LAST_RESORT))
    return ranked[0] if ranked else None


def chosen(variable: str, kind: str, offered: list[str], preferred: Iterable[str]) -> str:
    """``$variable`` when set, else :func:`pick`'s choice (said aloud); exits when none."""
    if os.environ.get(variable):
        return os.environ[variable]
    handle = pick(offered, preferred)
    if handle is None:
        raise SystemExit(
            f"The Letta server offers no {kind}: configure a provider on it, then set {variable}"
        )
    print(f"Using {kind} {handle} (set {variable} to choose another: {', '.join(offered)})")
    return handle


def one_line(error: Exception) -> str:
    """An error's message on one line, short enough to read."""
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


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
