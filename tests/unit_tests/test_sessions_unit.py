"""Session keys -> conversations, against an in-memory fake of Letta's conversations API."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from letta_client import Letta

from langchain_letta import state
from langchain_letta.errors import LettaInputError
from langchain_letta.sessions import (
    InMemorySessionStore,
    JsonFileSessionStore,
    SessionResolver,
    SessionStore,
    session_tag,
)

AGENT = "agent-00000000-0000-4000-8000-000000000000"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeServer:
    """``/v1/conversations`` of one agent: create, list (summary_search), update, delete."""

    def __init__(self) -> None:
        self.conversations: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.on_create: Callable[[], None] | None = None
        self.on_list: Callable[[int], None] | None = None
        self._clock = 0

    def add(self, summary: str, *, age: int = 0) -> str:
        self._clock += 1
        conv_id = f"conv-{uuid.uuid4()}"
        self.conversations[conv_id] = {
            "id": conv_id,
            "agent_id": AGENT,
            "summary": summary,
            "created_at": (T0 + timedelta(seconds=self._clock - age * 1000)).isoformat(),
            "in_context_message_ids": [],
        }
        return conv_id

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        path = request.url.path.rstrip("/")
        if request.method == "POST" and path == "/v1/conversations":
            body = json.loads(request.content)
            conv_id = self.add(body.get("summary") or "")
            if self.on_create:
                self.on_create()
            return httpx.Response(200, json=self.conversations[conv_id])
        if request.method == "GET" and path == "/v1/conversations":
            lists = sum(r.startswith("GET") for r in self.requests)
            if self.on_list:
                self.on_list(lists)
            search = request.url.params.get("summary_search") or ""
            found = [c for c in self.conversations.values() if search in (c["summary"] or "")]
            found.sort(key=lambda c: (c["created_at"], c["id"]))
            return httpx.Response(200, json=found[: int(request.url.params.get("limit", 50))])
        conv_id = path.rsplit("/", 1)[-1]
        if request.method == "PATCH":
            self.conversations[conv_id]["summary"] = json.loads(request.content)["summary"]
            return httpx.Response(200, json=self.conversations[conv_id])
        if request.method == "DELETE":
            del self.conversations[conv_id]
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"detail": "not found"})

    def client(self) -> Letta:
        transport = httpx.MockTransport(self.handle)
        return Letta(base_url="http://fake-letta", http_client=httpx.Client(transport=transport))

    def tagged(self, key: str) -> list[str]:
        return [c["id"] for c in self.conversations.values() if c["summary"] == session_tag(key)]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    state.reset()
    yield
    state.reset()


def restart() -> None:
    """What a process restart does to the mapping: the in-process cache is gone."""
    state.reset()


def test_new_key_gets_one_tagged_conversation_found_again_after_restart() -> None:
    server = FakeServer()
    resolver = SessionResolver(server.client(), AGENT)

    conv = resolver.resolve("alice")

    assert server.tagged("alice") == [conv]
    restart()
    server.requests.clear()
    assert SessionResolver(server.client(), AGENT).resolve("alice") == conv
    assert server.requests == ["GET /v1/conversations/"]  # found, not created
    assert server.tagged("alice") == [conv]


def test_warm_key_costs_no_request() -> None:
    server = FakeServer()
    resolver = SessionResolver(server.client(), AGENT)
    conv = resolver.resolve("alice")
    server.requests.clear()

    assert resolver.resolve("alice") == conv
    assert SessionResolver(server.client(), AGENT).resolve("alice") == conv  # shared cache
    assert server.requests == []


def test_keys_match_exactly_not_by_prefix() -> None:
    server = FakeServer()
    resolver = SessionResolver(server.client(), AGENT)
    long_key = resolver.resolve("alice-2")
    restart()

    assert resolver.resolve("alice", create=False) is None
    short_key = resolver.resolve("alice")
    assert short_key != long_key
    assert server.tagged("alice") == [short_key]


def test_unknown_key_without_create_creates_nothing() -> None:
    server = FakeServer()
    assert SessionResolver(server.client(), AGENT).resolve("nobody", create=False) is None
    assert server.conversations == {}


def test_an_empty_relist_keeps_our_conversation() -> None:
    server = FakeServer()
    server.on_list = lambda n: server.conversations.clear() if n > 1 else None  # list lags

    conv = SessionResolver(server.client(), AGENT).resolve("alice")

    assert conv is not None
    assert conv.startswith("conv-")


def test_losing_the_race_deletes_our_empty_conversation() -> None:
    server = FakeServer()
    rival: list[str] = []
    server.on_create = lambda: rival.append(server.add(session_tag("alice"), age=1))

    conv = SessionResolver(server.client(), AGENT).resolve("alice")

    assert conv == rival[0]
    assert server.tagged("alice") == rival
    assert any(r.startswith("DELETE") for r in server.requests)


def test_an_older_rival_visible_late_still_wins() -> None:
    server = FakeServer()
    rival: list[str] = []
    # The rival was created first but shows up only after our first re-list.

    def late_rival(lists: int) -> None:
        if lists == 2:
            rival.append(server.add(session_tag("bob"), age=1))

    server.on_list = late_rival

    conv = SessionResolver(server.client(), AGENT).resolve("bob")

    assert conv == rival[0]
    assert server.tagged("bob") == rival


def test_threads_racing_on_one_key_share_one_conversation() -> None:
    server = FakeServer()
    results: list[str | None] = []

    def resolve() -> None:
        results.append(SessionResolver(server.client(), AGENT).resolve("carol"))

    workers = [threading.Thread(target=resolve) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(set(results)) == 1
    assert server.tagged("carol") == [results[0]]
    assert sum(r.startswith("POST") for r in server.requests) == 1


def test_renew_marks_the_old_conversation_cleared_then_deletes_it() -> None:
    server = FakeServer()
    resolver = SessionResolver(server.client(), AGENT)
    old = resolver.resolve("alice")
    server.requests.clear()

    new = resolver.renew("alice")

    assert old is not None
    assert new != old
    assert server.tagged("alice") == [new]
    assert old not in server.conversations  # deleted: other replicas get a 404 and follow
    patch, delete = f"PATCH /v1/conversations/{old}", f"DELETE /v1/conversations/{old}"
    assert server.requests.index(patch) < server.requests.index(delete)
    assert server.requests.index("POST /v1/conversations/") < server.requests.index(delete)
    restart()
    assert resolver.resolve("alice") == new


@pytest.mark.parametrize("kind", ["memory", "json"])
def test_stores_hold_the_mapping(kind: str, tmp_path: Path) -> None:
    server = FakeServer()
    path = tmp_path / "sessions" / "map.json"
    store: SessionStore = InMemorySessionStore() if kind == "memory" else JsonFileSessionStore(path)
    assert isinstance(store, SessionStore)
    resolver = SessionResolver(server.client(), AGENT, store)

    conv = resolver.resolve("alice")

    assert store.get(AGENT, "alice") == conv
    restart()
    server.requests.clear()
    if kind == "json":
        store = JsonFileSessionStore(path)  # a new process reads the file
    assert SessionResolver(server.client(), AGENT, store).resolve("alice") == conv
    assert server.requests == []  # the store answers, not the server
    assert store.get(AGENT, "other") is None


def test_json_store_file_is_plain_json(tmp_path: Path) -> None:
    store = JsonFileSessionStore(tmp_path / "map.json")
    store.set(AGENT, "a", "conv-1")
    store.set(AGENT, "b", "conv-2")
    assert json.loads((tmp_path / "map.json").read_text()) == {
        f"{AGENT}\na": "conv-1",
        f"{AGENT}\nb": "conv-2",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["map.json"]  # no temp file left


@pytest.mark.parametrize("bad", ["", "  ", "a\nb", "x" * 513, 7, None])
def test_bad_session_keys_are_refused(bad: Any) -> None:
    server = FakeServer()
    with pytest.raises(LettaInputError):
        SessionResolver(server.client(), AGENT).resolve(bad)
    assert server.requests == []
