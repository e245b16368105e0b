"""LettaChatMessageHistory over an in-memory fake of Letta's message list (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from letta_client import AsyncLetta, Letta

from langchain_letta import LettaChatMessageHistory, LettaHistoryWriteError, sessions, state
from langchain_letta.history_reading import ReadThread

AGENT = "agent-00000000-0000-4000-8000-000000000000"
CONV = "conv-00000000-0000-4000-8000-000000000001"
DATE = "2026-01-01T00:00:00Z"


class FakeServer:
    """A conversation's listing and Letta's listing by creation time, create, retrieve.

    Absolute cursors; the conversation's listing ignores an unknown cursor, the listing
    by creation time answers it with 404.
    """

    def __init__(self) -> None:
        self.rows: list[list[dict[str, Any]]] = [
            [{"id": "message-sys", "message_type": "system_message", "content": "You are..."}]
        ]
        self.requests: list[httpx.Request] = []

    def user(self, text: str) -> None:
        self._row([{"message_type": "user_message", "content": text}])

    def reply(self, text: str, *, think: str | None = None) -> None:
        items = [{"message_type": "reasoning_message", "reasoning": think}] if think else []
        self._row([*items, {"message_type": "assistant_message", "content": text}])

    def tool_step(self, call_id: str) -> None:
        call = {
            "name": "conversation_search",
            "arguments": '{"query": "x"}',
            "tool_call_id": call_id,
        }
        self._row([{"message_type": "tool_call_message", "tool_call": call}])
        self._row(
            [
                {
                    "message_type": "tool_return_message",
                    "tool_return": "found",
                    "status": "success",
                    "tool_call_id": call_id,
                }
            ]
        )

    def turn(self, n: int) -> None:
        self.user(f"question {n}")
        if n % 3 == 1:
            self.tool_step(f"call-{n}")
        self.reply(f"answer {n}", think=f"thinking {n}" if n % 2 else None)

    def _row(self, items: list[dict[str, Any]]) -> None:
        row_id = f"message-{len(self.rows):05d}"
        self.rows.append([{**item, "id": row_id, "date": DATE} for item in items])

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST" and request.url.path.rstrip("/") == "/v1/conversations":
            new = {"id": CONV.replace("0001", "0002"), "agent_id": request.url.params["agent_id"]}
            return httpx.Response(200, json={**new, "in_context_message_ids": []})
        assert request.method == "GET"
        path = request.url.path.rstrip("/")
        if path.startswith("/v1/conversations/conv-") and not path.endswith("/messages"):
            return httpx.Response(200, json={"id": path.rsplit("/", 1)[-1], "agent_id": AGENT})
        params = request.url.params
        ids = [row[0]["id"] for row in self.rows]
        by_time = path == "/v1/messages"  # Letta's listing by creation time
        for cursor in ("after", "before"):
            if by_time and params.get(cursor) is not None and params[cursor] not in ids:
                return httpx.Response(404, json={"detail": "No message found"})
        assert by_time or path.endswith("/messages")
        positions = list(range(len(self.rows)))
        if params.get("after") in ids:  # the conversation's listing ignores unknown ids
            positions = [p for p in positions if p > ids.index(params["after"])]
        if params.get("before") in ids:
            positions = [p for p in positions if p < ids.index(params["before"])]
        positions.sort(reverse=params.get("order", "desc") == "desc")
        chosen = positions[: int(params.get("limit", 100))]
        return httpx.Response(200, json=[item for p in chosen for item in self.rows[p]])

    def history(self, **options: Any) -> LettaChatMessageHistory:
        transport = httpx.MockTransport(self.handle)
        if options.pop("known", True):  # this process already saw the conversation is AGENT's
            sessions.bind("http://fake", options.get("conversation_id", CONV), AGENT)

        async def ahandle(request: httpx.Request) -> httpx.Response:
            return self.handle(request)

        return LettaChatMessageHistory(
            agent_id=AGENT,
            conversation_id=options.pop("conversation_id", CONV),
            client=Letta(base_url="http://fake", http_client=httpx.Client(transport=transport)),
            async_client=AsyncLetta(
                base_url="http://fake",
                http_client=httpx.AsyncClient(transport=httpx.MockTransport(ahandle)),
            ),
            **options,
        )


@pytest.fixture(autouse=True)
def _fresh_thread_cache() -> None:
    state.reset()


def summary(messages: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in messages]


def test_messages_are_human_and_ai_with_letta_ids_and_conversation() -> None:
    server = FakeServer()
    server.turn(1)
    server.turn(2)

    messages = server.history().messages

    assert summary(messages) == [
        ("human", "question 1"),
        ("ai", "answer 1"),
        ("human", "question 2"),
        ("ai", "answer 2"),
    ]
    assert all(m.id and m.id.startswith("message-") for m in messages)
    assert all(m.response_metadata["conversation_id"] == CONV for m in messages)
    first_ai = messages[1]
    assert isinstance(first_ai, AIMessage)
    # one reply, one id: its first row (the tool step), as its streamed chunks carry
    assert first_ai.id == server.rows[-5][0]["id"]
    assert first_ai.response_metadata["letta_last_message_id"] == server.rows[-3][0]["id"]
    assert "letta_last_message_id" not in messages[3].response_metadata  # one row
    kinds = [block["type"] for block in first_ai.content if isinstance(block, dict)]
    assert kinds == ["server_tool_call", "server_tool_result", "reasoning", "text"]
    assert first_ai.tool_calls == []  # the agent's own tools never become tool_calls


def test_system_prompt_only_on_request() -> None:
    server = FakeServer()
    server.turn(2)
    prompt = server.history(include_system=True, sync_memory="never").messages[0]
    assert isinstance(prompt, SystemMessage)
    assert server.history().messages[0].type == "human"


def test_creating_a_history_does_no_io() -> None:
    server = FakeServer()
    server.history()
    LettaChatMessageHistory(session_id="alice", agent_id=AGENT, base_url="http://fake")
    assert server.requests == []


@pytest.mark.parametrize("turns", [3, 110])
def test_warm_reads_cost_one_request(turns: int) -> None:
    server = FakeServer()
    for n in range(turns):
        server.turn(n)
    history = server.history(page_size=50)

    first = history.messages
    cold_requests = len(server.requests)
    server.requests.clear()
    again = history.messages
    assert len(server.requests) == 1
    assert again == first

    server.turn(999)
    server.requests.clear()
    newer = server.history(page_size=50).messages  # another history object, same process
    assert len(server.requests) == 1
    assert summary(newer[-2:]) == [("human", "question 999"), ("ai", "answer 999")]
    # the first page is at least 100 rows (it must show a compaction's summary), then 50
    assert cold_requests == 1 + max(0, len(server.rows) - 100) // 50 + (len(server.rows) >= 100)


def test_async_reads_match_sync_reads() -> None:
    server = FakeServer()
    for n in range(7):
        server.turn(n)
    history = server.history(page_size=4)

    async def read() -> tuple[list[BaseMessage], list[BaseMessage]]:
        whole = await history.aget_messages()
        paged = [m async for m in history.aiter_messages(order="desc", page_size=3)]
        return whole, paged

    whole, paged = asyncio.run(read())
    assert whole == server.history().messages
    assert paged == whole[::-1]


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 100])
def test_descending_pages_fold_turns_like_ascending(page_size: int) -> None:
    server = FakeServer()
    for n in range(12):
        server.turn(n)
    history = server.history()

    ascending = list(history.iter_messages(page_size=page_size))
    descending = list(history.iter_messages(order="desc", page_size=page_size))

    assert ascending == history.messages
    assert descending == ascending[::-1]
    ids = [m.id for m in ascending]
    assert len(ids) == len(set(ids)) == 24


def test_after_and_before_cursors() -> None:
    server = FakeServer()
    for n in range(6):
        server.turn(n)
    history = server.history()
    messages = history.messages
    first_answer, last_question = messages[1], messages[-2]

    between = list(history.iter_messages(after=first_answer.id, before=last_question.id))
    assert summary(between) == summary(messages[2:-2])
    newest_first = list(history.iter_messages(order="desc", after=first_answer.id, page_size=2))
    assert newest_first == messages[2:][::-1]


def test_iteration_is_lazy() -> None:
    server = FakeServer()
    for n in range(40):
        server.turn(n)
    newest = next(server.history().iter_messages(order="desc", page_size=10))
    assert newest.text == "answer 39"
    # the oldest rows (a compaction's summary would be there), then the newest page
    assert [dict(r.url.params) for r in server.requests] == [
        {"order": "asc", "limit": "100"},
        {"order": "desc", "limit": "10"},
    ]


def test_add_messages_accepts_stored_turns_and_writes_nothing() -> None:
    server = FakeServer()
    server.turn(2)
    history = server.history()
    stored = history.messages
    server.requests.clear()

    history.add_messages(stored)
    history.add_messages([HumanMessage("question 2"), stored[-1]])  # the input of a stored turn
    asyncio.run(history.aadd_messages(stored))

    assert server.requests == []


@pytest.mark.parametrize(
    "new",
    [
        [HumanMessage("never sent")],
        [HumanMessage("hi"), AIMessage("a reply from another model", id="lc_run-1")],
        [SystemMessage("be brief")],
    ],
)
def test_add_messages_refuses_what_letta_did_not_store(new: list[BaseMessage]) -> None:
    server = FakeServer()
    server.turn(2)
    history = server.history()
    stored = history.messages
    server.requests.clear()

    with pytest.raises(LettaHistoryWriteError, match="nothing was written"):
        history.add_messages([*stored, *new])
    with pytest.raises(LettaHistoryWriteError):
        asyncio.run(history.aadd_messages(new))
    assert all(r.method == "GET" for r in server.requests)  # nothing was written


def test_another_conversations_message_is_not_stored_here() -> None:
    server = FakeServer()
    server.turn(2)
    foreign = (
        server.history()
        .messages[-1]
        .model_copy(update={"response_metadata": {"conversation_id": "conv-other"}})
    )
    with pytest.raises(LettaHistoryWriteError):
        server.history().add_messages([foreign])


def test_clear_switches_to_a_fresh_conversation() -> None:
    server = FakeServer()
    server.turn(1)
    history = server.history()
    assert history.messages

    history.clear()

    assert history.conversation_id == CONV.replace("0001", "0002")
    posts = [r for r in server.requests if r.method == "POST"]
    assert [r.url.path.rstrip("/") for r in posts] == ["/v1/conversations"]


def test_a_cancelled_async_read_does_not_leak_the_thread_lock() -> None:
    server = FakeServer()
    server.turn(1)
    history = server.history()
    thread = state.THREADS.obtain((history._cache_key, CONV), ReadThread)

    async def cancel_a_waiting_read() -> list[BaseMessage]:
        thread.lock.acquire()
        reader = asyncio.ensure_future(history.aget_messages())
        await asyncio.sleep(0.05)
        reader.cancel()
        thread.lock.release()
        with pytest.raises(asyncio.CancelledError):
            await reader
        await asyncio.sleep(0.05)
        return await asyncio.wait_for(history.aget_messages(), 5)

    assert [m.text for m in asyncio.run(cancel_a_waiting_read())] == ["question 1", "answer 1"]


def test_a_read_thread_leaves_out_only_the_prompt_whatever_the_batches() -> None:
    import random
    from types import SimpleNamespace

    from langchain_letta.history_reading import is_prompt
    from langchain_letta.messages import SYSTEM_ALERT

    kinds = ["user_message", "assistant_message", "reasoning_message", "system_message", "alert"]

    def convert(items: list[Any]) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        for item in items:
            if item.kind == "user_message":
                out.append(HumanMessage(item.id))
            elif item.kind == "assistant_message":
                out.append(AIMessage(item.id))
            elif item.kind == "system_message":
                out.append(SystemMessage(item.id))
            elif item.kind == "alert":  # a summary: a system message, not the prompt
                out.append(
                    SystemMessage(item.id, response_metadata={"letta_message_type": SYSTEM_ALERT})
                )
        return out

    rng = random.Random(7)
    for _ in range(200):
        items = [
            SimpleNamespace(
                id=f"m{i}",
                kind=kind,
                message_type="system_message" if kind == "alert" else kind,
                model_dump_json=lambda: "{}",
            )
            for i, kind in enumerate(rng.choices(kinds, k=rng.randint(0, 12)))
        ]
        with_prompt, without = ReadThread(), ReadThread()
        start = 0
        while start < len(items) or start == 0:
            stop = start + rng.randint(0, 4)
            batch = items[start:stop]
            whole = with_prompt.extend(batch, convert)
            read = without.extend(batch, convert, include_system=False)
            assert [m.content for m in read] == [m.content for m in whole if not is_prompt(m)]
            start = max(stop, start + 1)
