"""The process-wide stores: each holds to its bound, and an eviction costs only a request."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from letta_client import AsyncLetta, Letta

from benchmarks.fake_letta import FakeLetta
from langchain_letta import ChatLetta, LettaChatMessageHistory, forks, state
from langchain_letta.forks import Branches, record_tip
from langchain_letta.history_reading import ITEM_BYTES, ReadThread, held_bytes
from langchain_letta.lru import LRU
from langchain_letta.turns import keyed_otids

AGENT = "agent-00000000-0000-4000-8000-00000000a9e7"
URL = "http://fake-letta"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    state.reset()


def lrus() -> dict[str, LRU[Any, Any]]:
    return {name: s for name, s in state.STORES.items() if isinstance(s, LRU)}


def flood(store: LRU[Any, Any], name: str) -> None:
    """Fill `store` to its bound with entries of its own kind (everything else is evicted)."""
    if name == "THREADS":
        store[("flood", "conv-flood")] = ReadThread(size=store.budget - ITEM_BYTES)
    elif name == "SENT":
        for n in range(store.budget // 4):
            store[f"conv-flood-{n}"] = set()
    else:
        for n in range(store.budget):
            store[f"flood-{n}"] = "x"


def test_every_store_has_a_bound_and_the_table_names_it() -> None:
    assert state.__doc__ is not None
    for name, store in state.STORES.items():
        assert f"| `{name}` |" in state.__doc__
        assert name == "LOCKS" or isinstance(store, LRU) or hasattr(store, "clear")
    assert set(lrus()) >= {"SESSIONS", "OWNERS", "THREADS", "SENT", "TIPS", "KEY_LOCKS"}


@pytest.mark.parametrize("name", sorted(lrus()))
def test_a_store_flooded_twice_over_holds_its_bound(name: str) -> None:
    store = lrus()[name]
    store["first"] = store.obtain("first", lambda: ReadThread(size=1) if name == "THREADS" else "x")
    flood(store, name)
    flood(store, name)

    assert "first" not in store
    assert store.weight <= store.budget
    assert len(store) <= store.budget


def test_a_read_thread_weighs_the_bytes_it_holds() -> None:
    text = "x" * 100_000
    prompt = SimpleNamespace(
        message_type="system_message", id="message-1", model_dump_json=lambda: text
    )
    thread = ReadThread()
    thread.extend([prompt], lambda items: [])
    state.THREADS[(URL, "conv-a")] = thread

    assert thread.size == held_bytes(prompt) == ITEM_BYTES + 2 * len(text)
    assert state.THREADS.weight == ITEM_BYTES + thread.size  # the thread itself too
    assert state.THREADS.budget // thread.size < 400  # a bound in bytes, not in items


def test_the_eviction_hook_sees_only_entries_dropped_for_the_budget() -> None:
    dropped: list[tuple[str, int]] = []
    store: LRU[str, int] = LRU(2, on_evict=lambda key, value: dropped.append((key, value)))
    store["a"], store["b"] = 1, 2
    store.pop("a")
    store["c"], store["d"] = 3, 4
    store.clear()

    assert dropped == [("b", 2)]


# ------------------------------------------------------------------ eviction costs a request


class Served:
    """The loopback fake Letta of the benchmarks, in process, counting requests."""

    def __init__(self) -> None:
        self.fake = FakeLetta()
        self.paths: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        target = request.url.raw_path.decode()
        status, kind, body = self.fake.route(request.method, target, request.content)
        return httpx.Response(status, headers={"content-type": kind}, content=body)

    def clients(self) -> dict[str, Any]:
        async def ahandle(request: httpx.Request) -> httpx.Response:
            return self.handle(request)

        return {
            "client": Letta(
                base_url=URL, http_client=httpx.Client(transport=httpx.MockTransport(self.handle))
            ),
            "async_client": AsyncLetta(
                base_url=URL,
                http_client=httpx.AsyncClient(transport=httpx.MockTransport(ahandle)),
            ),
        }


def test_after_every_store_is_flooded_a_session_turns_and_reads_exactly() -> None:
    served = Served()
    clients = served.clients()
    model = ChatLetta(agent_id=AGENT, base_url=URL, max_retries=0, **clients)

    def turn_and_read(text: str) -> list[Any]:
        reply = model.invoke(text, config={"configurable": {"session_id": "alice"}})
        assert reply.content == f"Echo: {text}"
        history = LettaChatMessageHistory(
            session_id="alice", agent_id=AGENT, base_url=URL, include_system=True, **clients
        )
        return [(m.type, m.content) for m in history.messages]

    first = turn_and_read("one")
    served.paths.clear()
    warm = turn_and_read("two")
    warm_requests = list(served.paths)
    for name, store in lrus().items():
        flood(store, name)
    served.paths.clear()
    cold = turn_and_read("three")

    assert first[1:] == [("human", "one"), ("ai", "Echo: one")]
    assert warm[1:] == [*first[1:], ("human", "two"), ("ai", "Echo: two")]
    assert cold == [*warm, ("human", "three"), ("ai", "Echo: three")]  # same conversation
    assert "GET /v1/conversations/" in served.paths  # the session was looked up again
    assert "GET /v1/conversations/" not in warm_requests
    assert len(served.paths) > len(warm_requests)


def branches_over(stored: list[Any], listed: list[str]) -> Branches:
    """`Branches` over a fake server holding `stored`; what it lists goes in `listed`."""

    def listing(conversation_id: str, **_: Any) -> Any:
        listed.append(conversation_id)
        return SimpleNamespace(items=stored)

    conversations = SimpleNamespace(
        messages=SimpleNamespace(list=listing),
        create=lambda agent_id, summary: SimpleNamespace(id="conv-branch"),
        retrieve=lambda conversation_id: SimpleNamespace(agent_id=AGENT, summary=None),
    )
    return Branches(SimpleNamespace(base_url=URL, conversations=conversations), AGENT)  # type: ignore[arg-type]


def test_an_evicted_record_of_sent_ids_still_recognises_a_replay() -> None:
    step = [HumanMessage("one", id="lc-1")]
    (sent,) = keyed_otids([{}], str(forks.replay_key("conv-a", step)))
    listed: list[str] = []
    stored: list[Any] = []

    branches = branches_over(stored, listed)
    assert branches.place("conv-a", step)[0] == "conv-a"  # the first step, new
    stored.append(SimpleNamespace(message_type="user_message", **sent))
    record_tip("conv-a", "message-1")  # ... stored
    listed.clear()
    assert branches.place("conv-a", step)[0] == "conv-branch"  # its replay: known here
    assert listed == []

    for n in range(4):  # threads with many ids push conv-a's ids out
        state.PLANNED[f"conv-{n}"] = tuple(f"lc-{n}-{i}" for i in range(9_999))
        record_tip(f"conv-{n}", "message-x")
    assert "conv-a" not in state.SENT

    assert branches.place("conv-a", step)[0] == "conv-branch"  # still known: by a listing
    assert listed == ["conv-a"]


def test_a_conversation_past_its_sent_ids_limit_still_recognises_a_replay() -> None:
    step = [HumanMessage("one", id="lc-1")]
    (sent,) = keyed_otids([{}], str(forks.replay_key("conv-a", step)))
    listed: list[str] = []
    stored = [SimpleNamespace(message_type="user_message", **sent)]

    branches = branches_over(stored, listed)
    state.PLANNED["conv-a"] = ("lc-1",)
    record_tip("conv-a", "message-1")  # the first step, stored
    state.PLANNED["conv-a"] = tuple(f"lc-more-{i}" for i in range(10_000))
    record_tip("conv-a", "message-2")  # a long thread: its ids are let go

    assert branches.place("conv-a", step)[0] == "conv-branch"  # still known: by a listing
    assert listed == ["conv-a"]
