"""Sessions and histories stay one truth with the real server (issue 13), live.

Several OS processes where the item needs them: a second process is a fresh
interpreter (``subprocess``) with nothing cached.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import letta_client
import pytest
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from letta_client import Letta

from langchain_letta import (
    ChatLetta,
    JsonFileSessionStore,
    LettaChatMessageHistory,
    sessions,
    state,
)
from langchain_letta.errors import (
    LettaConversationIdError,
    LettaCursorError,
    LettaForeignConversationError,
    LettaInputError,
    LettaNotFoundError,
    LettaSessionStoreError,
)
from langchain_letta.sessions import SessionResolver, session_tag
from tests.integration_tests.conftest import EMBEDDING_HANDLE, MODEL_HANDLE

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]


def restart() -> None:
    """Forget what this process knows, as a new process would."""
    state.reset()


def in_new_process(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter; its last stdout line."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def counting(base_url: str) -> tuple[Letta, list[str]]:
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(f"{r.method} {r.url}")]})
    return Letta(base_url=base_url, max_retries=0, http_client=http), seen


def user_texts(letta: Letta, conversation_id: str) -> list[str]:
    items = letta.conversations.messages.list(conversation_id, order="asc", limit=1000)
    return [str(i.content) for i in items if i.message_type == "user_message"]


def session(key: str) -> dict[str, Any]:
    return {"configurable": {"session_id": key}}


_CLEAR = """
import sys
from langchain_letta import LettaChatMessageHistory
h = LettaChatMessageHistory(session_id=sys.argv[3], agent_id=sys.argv[2], base_url=sys.argv[1])
h.clear()
print(h.conversation_id)
"""

_READ = """
import json, sys
from langchain_letta import LettaChatMessageHistory
h = LettaChatMessageHistory(session_id=sys.argv[3], agent_id=sys.argv[2], base_url=sys.argv[1])
print(json.dumps([[m.type, m.text, m.id] for m in h.messages]))
"""

_RESOLVE = """
import sys
from letta_client import Letta
from langchain_letta.sessions import SessionResolver
client = Letta(base_url=sys.argv[1], max_retries=0)
print(SessionResolver(client, sys.argv[2]).resolve(sys.argv[3], create=sys.argv[4] == "1"))
"""
_RESOLVE_EACH = """
import json, sys
from letta_client import Letta
from langchain_letta.sessions import SessionResolver
client = Letta(base_url=sys.argv[1], max_retries=0)
resolver = SessionResolver(client, sys.argv[2])
print(json.dumps([resolver.resolve(key) for key in json.loads(sys.argv[3])]))
"""


# ------------------------------------------------------------------ 1. a cache that notices


def test_clear_in_another_process_reaches_a_warm_process(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    old = model.invoke("before", config=session("kim")).response_metadata["conversation_id"]
    reader = LettaChatMessageHistory(session_id="kim", agent_id=agent_id, base_url=base_url)
    assert [m.text for m in reader.messages] == ["before", "Echo: before"]

    new = in_new_process(_CLEAR, base_url, agent_id, "kim")

    assert new.startswith("conv-")
    assert new != old
    after = model.invoke("after", config=session("kim"))  # this process still caches `old`
    assert after.response_metadata["conversation_id"] == new
    assert user_texts(letta, new) == ["after"]  # the turn was not lost, and sent once
    assert [m.text for m in reader.messages] == ["after", "Echo: after"]  # the reader followed
    fresh = json.loads(in_new_process(_READ, base_url, agent_id, "kim"))
    assert [[kind, text] for kind, text, _ in fresh] == [["human", "after"], ["ai", "Echo: after"]]
    with pytest.raises(letta_client.NotFoundError):
        letta.conversations.retrieve(old)


def test_a_deleted_conversation_is_followed_and_cleared(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    old = model.invoke("one", config=session("lee")).response_metadata["conversation_id"]
    letta.conversations.delete(old)  # out of band: the cache still names it

    reply = model.invoke("two", config=session("lee"))

    moved = reply.response_metadata["conversation_id"]
    assert moved != old
    assert user_texts(letta, moved) == ["two"]
    letta.conversations.delete(moved)
    history = LettaChatMessageHistory(session_id="lee", agent_id=agent_id, base_url=base_url)
    history.clear()  # the session's conversation is already gone: clear still works
    assert history.messages == []
    again = model.invoke("three", config=session("lee"))
    assert again.response_metadata["conversation_id"] == history.conversation_id


def test_a_reader_of_a_deleted_conversation_id_is_told(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    conversation = letta.conversations.create(agent_id=agent_id).id
    for _ in letta.conversations.messages.create(
        conversation, messages=[{"role": "user", "content": "hi"}]
    ):
        pass
    history = LettaChatMessageHistory(
        conversation_id=conversation, agent_id=agent_id, base_url=base_url
    )
    assert len(history.messages) == 2
    letta.conversations.delete(conversation)
    with pytest.raises(LettaNotFoundError):
        history.messages  # noqa: B018
    restart()
    with pytest.raises(LettaNotFoundError):
        LettaChatMessageHistory(  # noqa: B018
            conversation_id=conversation, agent_id=agent_id, base_url=base_url
        ).messages


# ------------------------------------------------------------------ 2. exact tags


ODD_KEYS = ["a\\b", "%", "_", "user-1", "user-10", "user-1%", "ü 🙂 'quoted' \"x\"", "x" * 512]


def test_odd_keys_map_exactly_from_fresh_processes(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    # one fresh interpreter creates every key's conversation, another finds each again
    keys = json.dumps(ODD_KEYS)
    first = json.loads(in_new_process(_RESOLVE_EACH, base_url, agent_id, keys))
    assert len(set(first)) == len(ODD_KEYS)
    assert json.loads(in_new_process(_RESOLVE_EACH, base_url, agent_id, keys)) == first
    created = dict(zip(ODD_KEYS, first, strict=True))
    for key, conversation in created.items():
        restart()
        client, seen = counting(base_url)
        assert SessionResolver(client, agent_id).resolve(key, create=False) == conversation
        assert len(seen) == 1, (key, seen)  # a cold hit is one request
    restart()
    for missing in ["user-", "user-2", "%%", "a\\\\b", "us"]:
        assert SessionResolver(letta, agent_id).resolve(missing, create=False) is None
    assert len(letta.conversations.list(agent_id=agent_id, limit=100)) == len(ODD_KEYS)


def test_tags_of_the_older_format_are_migrated(base_url: str, agent_id: str, letta: Letta) -> None:
    legacy = letta.conversations.create(
        agent_id=agent_id, summary="langchain-letta session: old-user"
    ).id
    cleared = letta.conversations.create(
        agent_id=agent_id, summary="(cleared) langchain-letta session: old-user"
    ).id
    restart()
    client, seen = counting(base_url)

    assert SessionResolver(client, agent_id).resolve("old-user", create=False) == legacy

    assert letta.conversations.retrieve(legacy).summary == session_tag("old-user")
    assert "langchain-letta cleared" in str(letta.conversations.retrieve(cleared).summary)
    restart()
    client, seen = counting(base_url)
    assert SessionResolver(client, agent_id).resolve("old-user", create=False) == legacy
    assert len(seen) == 1  # migrated: one request from now on


# ------------------------------------------------------------------ 3. bound to the agent


@pytest.fixture
def other_agent(letta: Letta) -> Iterator[str]:
    agent = letta.agents.create(
        name=f"lc-test-other-{uuid.uuid4().hex[:8]}",
        model=MODEL_HANDLE,
        embedding=EMBEDDING_HANDLE,
        memory_blocks=[{"label": "human", "value": "B"}, {"label": "persona", "value": "B"}],
    )
    yield agent.id
    letta.agents.delete(agent.id)


async def test_a_conversation_of_another_agent_is_refused_before_sending(
    base_url: str, agent_id: str, other_agent: str, letta: Letta
) -> None:
    theirs = letta.conversations.create(agent_id=other_agent).id
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    config = {"configurable": {"conversation_id": theirs}}

    with pytest.raises(LettaForeignConversationError):
        model.invoke("hello B?", config=config)
    with pytest.raises(LettaForeignConversationError):
        await model.ainvoke("hello B?", config=config)
    with pytest.raises(LettaForeignConversationError):
        ChatLetta(agent_id=agent_id, base_url=base_url, conversation_id=theirs).invoke("x")
    history = LettaChatMessageHistory(conversation_id=theirs, agent_id=agent_id, base_url=base_url)
    with pytest.raises(LettaForeignConversationError):
        history.messages  # noqa: B018
    with pytest.raises(LettaForeignConversationError):
        await history.aget_messages()
    assert user_texts(letta, theirs) == []
    mine = ChatLetta(agent_id=other_agent, base_url=base_url).invoke("hi", config=config)
    assert mine.response_metadata["conversation_id"] == theirs


@pytest.mark.parametrize("bad", [None, "", "  ", "conv-1", "agent 1", 7])
def test_agent_id_is_required_and_checked_everywhere(base_url: str, bad: Any) -> None:
    with pytest.raises(LettaInputError):
        ChatLetta(agent_id=bad, base_url=base_url)
    with pytest.raises(LettaInputError):
        LettaChatMessageHistory(session_id="s", agent_id=bad, base_url=base_url)
    with pytest.raises(LettaInputError):
        SessionResolver(Letta(base_url=base_url), bad)


def test_two_conversations_tagged_with_one_key_pick_the_oldest_everywhere(
    base_url: str, agent_id: str, letta: Letta, caplog: pytest.LogCaptureFixture
) -> None:
    first = letta.conversations.create(agent_id=agent_id, summary=session_tag("twin")).id
    second = letta.conversations.create(agent_id=agent_id, summary=session_tag("twin")).id
    picks = {in_new_process(_RESOLVE, base_url, agent_id, "twin", "1") for _ in range(3)}
    restart()
    with caplog.at_level(logging.WARNING, logger="langchain_letta.sessions"):
        here = SessionResolver(letta, agent_id).resolve("twin")
    assert picks == {here} == {first}
    assert second in caplog.text
    assert "twin" in caplog.text


# ------------------------------------------------------------------ 4, 5. a fresh read


def fresh_read(base_url: str, agent_id: str, key: str) -> list[list[str]]:
    return json.loads(in_new_process(_READ, base_url, agent_id, key))


def triples(messages: list[Any]) -> list[list[str]]:
    return [[m.type, m.text, m.id] for m in messages]


def test_a_running_history_equals_a_fresh_read_across_automatic_compaction(
    base_url: str, small_agent: str
) -> None:
    model = ChatLetta(agent_id=small_agent, base_url=base_url)
    history = LettaChatMessageHistory(session_id="long", agent_id=small_agent, base_url=base_url)
    compacted_at = None
    for turn in range(12):
        model.invoke(f"turn {turn} " + "lorem ipsum " * 30, config=session("long"))
        running = history.messages
        if compacted_at is None and any(isinstance(m, SystemMessage) for m in running):
            compacted_at = turn
        if compacted_at is not None and turn >= compacted_at + 2:
            break
    assert compacted_at is not None, "the server never compacted"
    assert triples(running) == fresh_read(base_url, small_agent, "long")
    # Letta lists a compacted thread by positions that repeat (old and new turns mixed,
    # tied rows in any order, a cursor skipping its ties): every read is in time order.
    assert list(history.iter_messages()) == running
    assert list(history.iter_messages(page_size=3)) == running
    assert list(history.iter_messages(order="desc", page_size=3)) == running[::-1]
    summaries = [m for m in running if isinstance(m, SystemMessage)]
    assert summaries
    assert all(m.response_metadata["letta_message_type"] == "system_alert" for m in summaries)
    said = [f"turn {n} " + "lorem ipsum " * 30 for n in range(turn + 1)]
    assert [m.text for m in running if isinstance(m, HumanMessage)] == said
    assert [m.text for m in running if isinstance(m, AIMessage)] == [
        "Echo: " + text.strip() for text in said
    ]


async def test_a_reply_reports_the_compaction_its_turn_caused_as_the_history_shows_it(
    base_url: str, small_agent: str
) -> None:
    model = ChatLetta(agent_id=small_agent, base_url=base_url)
    history = LettaChatMessageHistory(session_id="told", agent_id=small_agent, base_url=base_url)
    reported: list[dict[str, str]] = []
    for turn in range(12):
        text = f"turn {turn} " + "lorem ipsum " * 30
        if turn % 2:
            reply: Any = await model.ainvoke(text, config=session("told"))
        else:
            reply = None
            for chunk in model.stream(text, config=session("told")):
                reply = chunk if reply is None else reply + chunk
        reported += reply.response_metadata.get("letta_system_alerts", [])
        if reported:
            break
    assert reported, "the server never compacted"
    summaries = [m for m in history.messages if isinstance(m, SystemMessage)]
    assert [{"id": m.id, "content": m.text} for m in summaries] == reported


def test_a_running_history_equals_a_fresh_read_after_explicit_compaction(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    history = LettaChatMessageHistory(session_id="cmp", agent_id=agent_id, base_url=base_url)
    for turn in range(4):
        model.invoke(f"turn {turn}", config=session("cmp"))
        assert history.messages
    handle = letta.agents.retrieve(agent_id).llm_config.handle
    letta.conversations.messages.compact(
        str(history.conversation_id), compaction_settings={"mode": "all", "model": handle}
    )
    model.invoke("after compaction", config=session("cmp"))

    running = history.messages

    assert triples(running) == fresh_read(base_url, agent_id, "cmp")
    assert "after compaction" in [m.text for m in running if isinstance(m, HumanMessage)]
    assert list(history.iter_messages()) == running


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It's sunny in {location}."


async def test_messages_and_iter_messages_agree_after_client_tool_round_trips(
    base_url: str, agent_id: str
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url).bind_tools([get_weather])
    history = LettaChatMessageHistory(session_id="tools", agent_id=agent_id, base_url=base_url)
    for city in ("Paris", "Rome"):
        question = HumanMessage(f'[tool:get_weather {{"location": "{city}"}}] weather?')
        call = model.invoke([question], config=session("tools"))
        assert history.messages  # a running read between the steps
        result = get_weather.invoke(call.tool_calls[0])
        model.invoke([question, call, result], config=session("tools"))
        running = history.messages

    assert list(history.iter_messages()) == running
    assert [m async for m in history.aiter_messages()] == running
    for size in (1, 2, 5):
        assert list(history.iter_messages(order="desc", page_size=size)) == running[::-1]
    assert triples(running) == fresh_read(base_url, agent_id, "tools")
    tool_ids = {m.tool_call_id for m in running if isinstance(m, ToolMessage)}
    assert len(tool_ids) == 2
    for message in running:
        if isinstance(message, AIMessage) and isinstance(message.content, list):
            for block in message.content:
                assert not (isinstance(block, dict) and block.get("tool_call_id") in tool_ids)


# ------------------------------------------------------------------ 6. cursors


async def test_foreign_malformed_and_unknown_cursors_raise(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    model.invoke("mine", config=session("c1"))
    model.invoke("theirs", config=session("c2"))
    mine = LettaChatMessageHistory(session_id="c1", agent_id=agent_id, base_url=base_url)
    theirs = LettaChatMessageHistory(session_id="c2", agent_id=agent_id, base_url=base_url)
    foreign = [str(m.id) for m in theirs.messages]
    unknown = f"message-{uuid.uuid4()}"
    for cursor in [*foreign, unknown, "garbage", "", "message-1 OR 1=1"]:
        for order in ("asc", "desc"):
            for side in ("after", "before"):
                with pytest.raises(LettaCursorError):
                    list(mine.iter_messages(order=order, **{side: cursor}))  # type: ignore[arg-type]
                with pytest.raises(LettaCursorError):
                    [m async for m in mine.aiter_messages(order=order, **{side: cursor})]  # type: ignore[arg-type]
    whole = mine.messages
    assert list(mine.iter_messages(after=whole[-1].id)) == []  # the newest is a valid cursor
    assert list(mine.iter_messages(before=whole[0].id)) == []


# ------------------------------------------------------------------ 7. stores with a race rule

_STORE_WORKER = """
import sys
from letta_client import Letta
from langchain_letta import JsonFileSessionStore
from langchain_letta.sessions import SessionResolver
base_url, agent_id, path, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
client = Letta(base_url=base_url, max_retries=0)
resolver = SessionResolver(client, agent_id, JsonFileSessionStore(path))
print(",".join(resolver.resolve(key) for key in keys))
"""

_SQLITE_WORKER = """
import sys
sys.path.insert(0, "examples")
from letta_client import Letta
from sqlite_session_store import SqliteSessionStore
from langchain_letta.sessions import SessionResolver
base_url, agent_id, path, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = Letta(base_url=base_url, max_retries=0)
print(SessionResolver(client, agent_id, SqliteSessionStore(path)).resolve(key))
"""


def _parallel(code: str, runs: list[list[str]]) -> list[str]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for args in runs
    ]
    outputs = [worker.communicate(timeout=180)[0].strip() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    return outputs


def test_json_store_under_several_processes_loses_nothing(
    base_url: str, agent_id: str, letta: Letta, tmp_path: Path
) -> None:
    path = str(tmp_path / "sessions.json")
    keyed = [[f"p{p}-k{k}" for k in range(9)] for p in range(5)]
    outputs = _parallel(
        _STORE_WORKER, [[base_url, agent_id, path, ",".join(keys)] for keys in keyed]
    )
    keys = [key for chunk in keyed for key in chunk]
    mapping = dict(zip(keys, ",".join(outputs).split(","), strict=True))
    store = JsonFileSessionStore(path)
    assert {key: store.get(agent_id, key) for key in mapping} == mapping  # all 45 kept
    assert len(set(mapping.values())) == 45

    shared = _parallel(_STORE_WORKER, [[base_url, agent_id, path, "one-new-key"]] * 5)
    assert len(set(shared)) == 1
    assert store.get(agent_id, "one-new-key") == shared[0]
    alive = {c.id for c in letta.conversations.list(agent_id=agent_id, limit=200)}
    assert alive == {*mapping.values(), shared[0]}  # the race losers were deleted


def test_the_sqlite_example_store_keeps_one_conversation_per_key(
    base_url: str, agent_id: str, letta: Letta, tmp_path: Path
) -> None:
    path = str(tmp_path / "sessions.sqlite")
    shared = _parallel(_SQLITE_WORKER, [[base_url, agent_id, path, "racing-key"]] * 5)
    assert len(set(shared)) == 1
    alive = [c.id for c in letta.conversations.list(agent_id=agent_id, limit=200)]
    assert alive == [shared[0]]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": 1}', "\x00\x01"])
def test_a_corrupt_session_file_is_reported_clearly(
    base_url: str, agent_id: str, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "sessions.json"
    path.write_text(content)
    model = ChatLetta(
        agent_id=agent_id, base_url=base_url, session_store=JsonFileSessionStore(path)
    )
    with pytest.raises(LettaSessionStoreError, match=str(path)):
        model.invoke("hi", config=session("x"))
    assert path.read_text() == content  # left as it was


# ------------------------------------------------------------------ 8. configurable.conversation_id


def test_an_app_key_given_as_conversation_id_names_the_mix_up(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    from langchain_core.runnables import ConfigurableFieldSpec
    from langchain_core.runnables.history import RunnableWithMessageHistory

    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    with pytest.raises(LettaConversationIdError, match="session_id"):
        model.invoke("hi", config={"configurable": {"conversation_id": "1"}})

    chain = RunnableWithMessageHistory(  # LangChain's own docstring example, keyed for Letta
        model,
        lambda user_id, conversation_id: LettaChatMessageHistory(
            session_id=f"{user_id}:{conversation_id}", agent_id=agent_id, base_url=base_url
        ),
        history_factory_config=[
            ConfigurableFieldSpec(id="user_id", annotation=str),
            ConfigurableFieldSpec(id="conversation_id", annotation=str),
        ],
    )
    with pytest.raises(LettaConversationIdError):
        chain.invoke("hi", config={"configurable": {"user_id": "u", "conversation_id": "1"}})
    assert letta.conversations.list(agent_id=agent_id) == []  # nothing was created or sent


# ------------------------------------------------------------------ 9. credentials in base_url


def test_credentials_in_base_url_never_show(
    base_url: str, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = base_url.split("://", 1)[1]
    for url, secret in [
        (f"http://alice:s3cr3t-pw@{host}", "s3cr3t-pw"),
        (f"http://{host}?api_key=s3cr3t-key", "s3cr3t-key"),
    ]:
        with caplog.at_level(logging.DEBUG):
            model = ChatLetta(agent_id=agent_id, base_url=url)
            reply = model.invoke("hi", config=session("creds"))
            events = [str(e) for e in model.stream("again", config=session("creds"))]
            with pytest.raises(LettaNotFoundError) as failure:
                ChatLetta(agent_id=f"agent-{uuid.uuid4()}", base_url=url).invoke("x")
        chain, error = [], failure.value
        while error is not None:
            chain.append(repr(error) + str(error))
            error = error.__cause__ or error.__context__  # type: ignore[assignment]
        surfaces = [
            repr(model),
            str(model),
            json.dumps(model.model_dump(), default=str),
            dumps(model),
            json.dumps(dumpd(model), default=str),
            json.dumps(model._identifying_params, default=str),
            json.dumps(model._get_invocation_params(), default=str),
            str(reply),
            *events,
            *chain,
            caplog.text,
            repr(LettaChatMessageHistory(session_id="creds", agent_id=agent_id, base_url=url)),
        ]
        assert reply.text == "Echo: hi"
        for surface in surfaces:
            assert secret not in surface
        caplog.clear()


# ------------------------------------------------------------------ 10. typed errors


def test_nul_and_odd_keys_raise_typed_errors_before_sending(base_url: str, agent_id: str) -> None:
    client, seen = counting(base_url)
    model = ChatLetta(agent_id=agent_id, base_url=base_url, client=client)
    for key in ["a\x00b", "", "two\nlines", "x" * 513]:
        with pytest.raises(LettaInputError):
            model.invoke("hi", config=session(key))
        with pytest.raises(LettaInputError):
            LettaChatMessageHistory(session_id=key, agent_id=agent_id, base_url=base_url)
    with pytest.raises(LettaInputError):
        ChatLetta(agent_id=agent_id, base_url=f"{base_url}?debug=1")
    assert seen == []


def test_malformed_server_answers_raise_typed_errors(base_url: str, agent_id: str) -> None:
    """A server (or a proxy before it) answering nonsense: what the real one never does."""
    from langchain_letta.errors import LettaResponseError

    def answer(body: str) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            headers = {"content-type": "application/json"}
            return httpx.Response(200, content=body.encode(), headers=headers)

        return httpx.MockTransport(handle)

    for body in ['["just a string"]', "{not json", '{"detail": 1}', "[1, 2]", "null"]:
        restart()
        http = httpx.Client(transport=answer(body))
        client = Letta(base_url=base_url, max_retries=0, http_client=http)
        with pytest.raises(LettaResponseError):
            SessionResolver(client, agent_id).resolve("k")
        history = LettaChatMessageHistory(
            conversation_id=f"conv-{uuid.uuid4()}", agent_id=agent_id, client=client
        )
        sessions.bind(str(client.base_url), str(history._conversation.id), agent_id)
        with pytest.raises(LettaResponseError):
            history.messages  # noqa: B018
