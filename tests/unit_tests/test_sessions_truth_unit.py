"""Pure logic of issue 13: tags, credentials, stores, ids, summaries, echoes (no network)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from langchain_core.load import dumpd, dumps
from langchain_core.messages import SystemMessage
from letta_client import Letta

from langchain_letta import ChatLetta, InMemorySessionStore, JsonFileSessionStore, state
from langchain_letta.connection import resolve_endpoint
from langchain_letta.errors import (
    LettaConversationIdError,
    LettaCursorError,
    LettaForeignConversationError,
    LettaInputError,
    LettaSessionStoreError,
)
from langchain_letta.history_reading import to_messages_lazily
from langchain_letta.messages import from_letta_messages, system_alert
from langchain_letta.paging import check_cursor
from langchain_letta.sessions import (
    SessionResolver,
    check_conversation_id,
    check_owner,
    key_digest,
    session_tag,
)
from tests.unit_tests.test_sessions_unit import AGENT, FakeServer

CONV = "conv-00000000-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    state.reset()


@pytest.mark.parametrize("key", ["a\\b", "%", "_", "user-1", "it's", "ü🙂", "x" * 512])
def test_tags_name_the_key_and_search_only_hex(key: str) -> None:
    tag = session_tag(key)
    assert tag.endswith(f": {key}")
    assert set(key_digest(key)) <= set("0123456789abcdef")
    assert len(key_digest(key)) == 32


def test_a_lookup_searches_the_digest_and_keeps_exact_matches() -> None:
    server = FakeServer()
    prefixed = [server.add(session_tag(f"user-1{n}")) for n in range(30)]
    server.add(f"{session_tag('user-1')} (edited)")
    resolver = SessionResolver(server.client(), AGENT)

    assert resolver.resolve("user-1", create=False) is None
    mine = resolver.resolve("user-1")
    assert mine not in prefixed
    searches = [r for r in server.requests if r.startswith("GET")]
    assert searches  # each one a digest search; no page of `user-1N` sessions came back


def test_legacy_tags_are_rewritten_on_the_first_miss_only() -> None:
    server = FakeServer()
    old = server.add("langchain-letta session: carol")
    cleared = server.add("(cleared) langchain-letta session: carol")
    resolver = SessionResolver(server.client(), AGENT)

    assert resolver.resolve("carol", create=False) == old
    assert server.conversations[old]["summary"] == session_tag("carol")
    assert server.conversations[cleared]["summary"].startswith("langchain-letta cleared ")
    server.requests.clear()
    assert resolver.resolve("dave", create=False) is None
    assert len(server.requests) == 1  # the sweep ran once for the agent in this process


def test_several_tagged_conversations_pick_the_oldest_and_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeServer()
    newer = server.add(session_tag("eve"))
    older = server.add(session_tag("eve"), age=5)
    assert SessionResolver(server.client(), AGENT).resolve("eve") == older
    assert newer in caplog.text


def test_refresh_follows_the_key_and_refuses_a_key_that_still_names_the_dead_id() -> None:
    server = FakeServer()
    resolver = SessionResolver(server.client(), AGENT)
    first = resolver.resolve("fay")
    del server.conversations[str(first)]
    fresh = resolver.refresh("fay", str(first))
    assert fresh not in {None, first}
    assert resolver.cached("fay") == fresh


@pytest.mark.parametrize("bad", ["a\x00b", "a\rb", "\ud800"])
def test_keys_the_server_cannot_store_are_refused(bad: str) -> None:
    server = FakeServer()
    with pytest.raises(LettaInputError):
        SessionResolver(server.client(), AGENT).resolve(bad)
    assert server.requests == []


@pytest.mark.parametrize("bad", ["1", "conv-1", "default", "", 1, None, f"{CONV} "])
def test_conversation_ids_are_checked_and_name_the_mix_up(bad: Any) -> None:
    with pytest.raises(LettaConversationIdError, match="session_id"):
        check_conversation_id(bad)
    with pytest.raises(LettaInputError):
        ChatLetta(agent_id=AGENT, base_url="http://x", conversation_id=bad or "x")


def test_owner_is_checked_once_and_a_foreign_conversation_refused() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"id": CONV, "agent_id": "agent-other"})

    client = Letta(
        base_url="http://x", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    with pytest.raises(LettaForeignConversationError, match="agent-other"):
        check_owner(client, AGENT, CONV)
    check_owner(client, "agent-other", CONV)
    check_owner(client, "agent-other", CONV)
    assert len(seen) == 2  # the second check of the owner came from the cache


@pytest.mark.parametrize("bad", ["", "garbage", "message-", "message-1 2", 7])
def test_malformed_cursors_are_refused(bad: Any) -> None:
    with pytest.raises(LettaCursorError):
        check_cursor(bad, "after")


# ------------------------------------------------------------------ credentials


@pytest.mark.parametrize(
    ("url", "secret"),
    [("http://ann:pw-123@h:8283/", "pw-123"), ("http://h:8283?api_key=key-123", "key-123")],
)
def test_credentials_leave_the_url_and_stay_secret(url: str, secret: str) -> None:
    endpoint = resolve_endpoint(url, None)
    assert endpoint.url == "http://h:8283"
    model = ChatLetta(agent_id=AGENT, base_url=url)
    for surface in [
        repr(model),
        str(model),
        repr(endpoint),
        json.dumps(model.model_dump(), default=str),
        dumps(model),
        json.dumps(dumpd(model)),
        json.dumps(model._get_invocation_params(), default=str),
        str(model.client.base_url),
    ]:
        assert secret not in surface
    header = model.client.default_headers.get("Authorization") or ""
    assert header.startswith(("Basic ", "Bearer "))


@pytest.mark.parametrize(
    "url", ["http://h?x=1", "ftp://h", "http://h#frag", "http://", "http://h:99999", "nope"]
)
def test_unusable_base_urls_are_refused_without_echoing_secrets(url: str) -> None:
    with pytest.raises(LettaInputError) as failure:
        ChatLetta(agent_id=AGENT, base_url=url.replace("://", "://u:topsecret@", 1))
    assert "topsecret" not in str(failure.value)
    assert failure.value.__context__ is None


# ------------------------------------------------------------------ stores


def test_set_if_absent_keeps_the_first_mapping_across_threads(tmp_path: Path) -> None:
    for store in (InMemorySessionStore(), JsonFileSessionStore(tmp_path / "s.json")):
        results: list[str] = []

        def offer(n: int, store: Any = store, results: list[str] = results) -> None:
            results.append(store.set_if_absent(AGENT, "k", f"conv-{n}"))

        threads = [threading.Thread(target=offer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results)) == 1
        assert store.get(AGENT, "k") == results[0]


@pytest.mark.parametrize("content", ["{", "[]", '{"a": 2}', "\xff"])
def test_a_corrupt_file_raises_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content.encode("latin-1"))
    store = JsonFileSessionStore(path)
    with pytest.raises(LettaSessionStoreError, match=r"s\.json"):
        store.get(AGENT, "k")
    with pytest.raises(LettaSessionStoreError):
        store.set_if_absent(AGENT, "k", "conv-1")
    assert path.read_bytes() == content.encode("latin-1")


def test_an_empty_file_is_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("")
    assert JsonFileSessionStore(path).set_if_absent(AGENT, "k", "conv-1") == "conv-1"


def test_a_store_without_set_if_absent_is_refused() -> None:
    class Old:
        def get(self, agent_id: str, session_id: str) -> str | None:
            return None

        def set(self, agent_id: str, session_id: str, conversation_id: str) -> None:
            pass

    with pytest.raises(LettaInputError, match="set_if_absent"):
        SessionResolver(Letta(base_url="http://x"), AGENT, Old())  # type: ignore[arg-type]


# ------------------------------------------------------------------ summaries and echoes


SUMMARY = json.dumps({"type": "system_alert", "message": "Earlier: they talked."}, indent=2)


def item(kind: str, n: int, **fields: Any) -> SimpleNamespace:
    return SimpleNamespace(id=f"message-{n:04d}", message_type=kind, **fields)


def test_a_compaction_summary_is_one_documented_system_message() -> None:
    assert system_alert(SUMMARY) == "Earlier: they talked."
    assert system_alert('{"type": "other"}') is None
    assert system_alert("hello") is None
    folded = from_letta_messages(
        [item("user_message", 1, content=SUMMARY)], conversation_id=CONV, agent_id=AGENT
    )
    assert len(folded) == 1
    assert isinstance(folded[0], SystemMessage)
    assert folded[0].text == "Earlier: they talked."
    assert folded[0].response_metadata["letta_message_type"] == "system_alert"


def test_client_tool_echoes_drop_in_both_orders() -> None:
    approval = SimpleNamespace(
        type="tool", tool_call_id="call-1", tool_return="sunny", status="success"
    )
    thread = [
        item("user_message", 1, content="weather?"),
        item(
            "approval_request_message",
            2,
            tool_call=SimpleNamespace(name="w", arguments="{}", tool_call_id="call-1"),
            tool_calls=None,
        ),
        item("approval_response_message", 3, approvals=[approval]),
        item(
            "tool_return_message", 4, tool_call_id="call-1", tool_return="sunny", status="success"
        ),
        item("assistant_message", 5, content="It is sunny."),
    ]

    def fold(items: list[Any]) -> list[Any]:
        return from_letta_messages(items, conversation_id=CONV, agent_id=AGENT)

    ascending = list(to_messages_lazily(iter(thread), "asc", fold))
    descending = list(to_messages_lazily(iter(thread[::-1]), "desc", fold))
    assert descending == ascending[::-1]
    assert ascending[-1].content == "It is sunny."  # no server_tool_result block for call-1
