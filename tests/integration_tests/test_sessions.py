"""Session keys -> conversations against a real Letta server."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from letta_client import Letta

from langchain_letta import ChatLetta, InMemorySessionStore, JsonFileSessionStore, state
from langchain_letta.sessions import SessionResolver, session_tag


def restart() -> None:
    """Forget what this process knows, as a new process would."""
    state.reset()


def counting_client(base_url: str) -> tuple[Letta, list[str]]:
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    http = httpx.Client(event_hooks={"request": [count]})
    return Letta(base_url=base_url, max_retries=0, http_client=http), seen


def tagged(letta: Letta, agent_id: str, key: str) -> list[str]:
    found = letta.conversations.list(agent_id=agent_id, summary_search=session_tag(key), limit=100)
    return [conv.id for conv in found if conv.summary == session_tag(key)]


@pytest.mark.vcr
def test_key_maps_to_one_conversation_found_again_after_restart(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    reply = model.invoke("remember me", config={"configurable": {"session_id": "dana"}})
    conversation = reply.response_metadata["conversation_id"]

    restart()
    client, requests = counting_client(base_url)
    resolver = SessionResolver(client, agent_id)
    assert resolver.resolve("dana") == conversation
    assert requests == ["GET /v1/conversations/"]  # one lookup, nothing created

    requests.clear()
    assert resolver.resolve("dana") == conversation
    assert SessionResolver(client, agent_id).resolve("dana") == conversation
    assert requests == []  # a warm key costs no request
    assert tagged(letta, agent_id, "dana") == [conversation]


@pytest.mark.vcr
@pytest.mark.parametrize("kind", ["memory", "json"])
def test_pluggable_stores(base_url: str, agent_id: str, kind: str, tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    store = InMemorySessionStore() if kind == "memory" else JsonFileSessionStore(path)
    model = ChatLetta(agent_id=agent_id, base_url=base_url, session_store=store)
    reply = model.invoke("hello store", config={"configurable": {"session_id": "erin"}})
    conversation = reply.response_metadata["conversation_id"]
    assert store.get(agent_id, "erin") == conversation

    restart()
    if kind == "json":
        store = JsonFileSessionStore(path)
    client, requests = counting_client(base_url)
    assert SessionResolver(client, agent_id, store).resolve("erin") == conversation
    assert requests == []  # the store answered


_RESOLVE = """
import sys
from letta_client import Letta
from langchain_letta.sessions import SessionResolver
client = Letta(base_url=sys.argv[1], max_retries=0)
print(SessionResolver(client, sys.argv[2]).resolve(sys.argv[3]))
"""


@pytest.mark.live
def test_found_again_from_a_new_process(base_url: str, agent_id: str, letta: Letta) -> None:
    def in_new_process(key: str) -> str:
        args = [sys.executable, "-c", _RESOLVE, base_url, agent_id, key]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    created = in_new_process("frank")
    assert created.startswith("conv-")
    assert in_new_process("frank") == created
    assert SessionResolver(letta, agent_id).resolve("frank") == created
    assert tagged(letta, agent_id, "frank") == [created]


def _race(base_url: str, agent_id: str, keys: list[str], start: object, out: object) -> None:
    """Resolve each key when every racer is ready (one barrier per round)."""
    client = Letta(base_url=base_url, max_retries=0)
    for key in keys:
        start.wait()  # type: ignore[attr-defined]
        out.put((key, SessionResolver(client, agent_id).resolve(key)))  # type: ignore[attr-defined]


@pytest.mark.live
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_racing_on_a_new_key_end_with_one_conversation(
    base_url: str, agent_id: str, letta: Letta, processes: int
) -> None:
    # the same racers take five rounds, each on a new key (an interpreter costs seconds)
    context = multiprocessing.get_context("spawn")
    keys = [f"race-{processes}-{round_}" for round_ in range(5)]
    start, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_race, args=(base_url, agent_id, keys, start, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    picked: dict[str, set[str]] = {key: set() for key in keys}
    for _ in range(processes * len(keys)):
        key, conversation = out.get(timeout=120)
        picked[key].add(conversation)
    for worker in workers:
        worker.join(60)
    for key, results in picked.items():
        remaining = tagged(letta, agent_id, key)
        assert len(remaining) == 1, (key, remaining, results)
        assert results == set(remaining)
