"""LettaStore against the real server: every op, sync and async, across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from langgraph.store.base import Item
from letta_client import AsyncLetta, Letta

from langchain_letta import LettaStore
from langchain_letta.errors import LettaAPIError, LettaBadRequestError, LettaUnprocessableError

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parents[2]


class Counted:
    """A LettaStore whose requests are counted."""

    def __init__(self, agent_id: str, base_url: str) -> None:
        self.requests: list[str] = []

        def count(request: httpx.Request) -> None:
            self.requests.append(f"{request.method} {request.url.path}")

        async def acount(request: httpx.Request) -> None:
            count(request)

        self.store = LettaStore(
            agent_id,
            client=Letta(
                base_url=base_url, http_client=httpx.Client(event_hooks={"request": [count]})
            ),
            async_client=AsyncLetta(
                base_url=base_url,
                http_client=httpx.AsyncClient(event_hooks={"request": [acount]}),
            ),
        )

    def take(self) -> list[str]:
        taken, self.requests = self.requests, []
        return taken


@pytest.fixture
def counted(agent_id: str, base_url: str) -> Counted:
    return Counted(agent_id, base_url)


@pytest.fixture
def store(counted: Counted) -> LettaStore:
    return counted.store


def passages(letta: Letta, agent_id: str) -> list[str]:
    return [p.text for p in letta.agents.passages.list(agent_id, limit=100)]


def in_subprocess(code: str, base_url: str, agent_id: str) -> subprocess.Popen[str]:
    prelude = (
        "import json, sys\n"
        "from langchain_letta import LettaStore\n"
        f"store = LettaStore({agent_id!r}, base_url={base_url!r})\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_put_get_replace_and_what_the_server_holds(
    store: LettaStore, counted: Counted, letta: Letta, agent_id: str
) -> None:
    assert store.get(("memories", "ada"), "tea") is None
    assert counted.take() == [f"GET /v1/agents/{agent_id}/archival-memory"]

    store.put(("memories", "ada"), "tea", {"fact": "Ada drinks green tea"})
    assert len(counted.take()) == 2  # look up the key, write the passage

    first = store.get(("memories", "ada"), "tea")
    assert len(counted.take()) == 1
    assert isinstance(first, Item)
    assert (first.namespace, first.key) == (("memories", "ada"), "tea")
    assert first.value == {"fact": "Ada drinks green tea"}

    store.put(("memories", "ada"), "tea", {"fact": "Ada drinks black tea now"})
    assert [r.split()[0] for r in counted.take()] == ["GET", "POST", "DELETE"]

    second = store.get(("memories", "ada"), "tea")
    assert second is not None
    assert second.value == {"fact": "Ada drinks black tea now"}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at

    texts = passages(letta, agent_id)
    assert len(texts) == 1  # the old passage is gone
    assert texts[0].startswith("fact: Ada drinks black tea now\n")
    found = letta.agents.passages.search(agent_id, query="what does Ada drink", top_k=3)
    assert found.results[0].content == texts[0]  # the agent's own archival search finds it
    assert "ns:memories.ada" in (found.results[0].tags or [])


def test_search_within_and_across_namespace_prefixes(store: LettaStore, counted: Counted) -> None:
    store.put(("users", "ada", "facts"), "tea", {"fact": "Ada drinks green tea", "rank": 1})
    store.put(("users", "ada", "facts"), "city", {"fact": "Ada lives in London", "rank": 2})
    store.put(("users", "bob", "facts"), "tea", {"fact": "Bob drinks coffee", "rank": 3})
    store.put(("other",), "noise", {"fact": "The moon is made of rock"})
    counted.take()

    ada = store.search(("users", "ada"))
    assert len(counted.take()) == 1
    assert [(i.namespace, i.key) for i in ada] == [
        (("users", "ada", "facts"), "tea"),
        (("users", "ada", "facts"), "city"),
    ]
    users = store.search(("users",))
    assert {i.key for i in users} == {"tea", "city"}
    assert len(users) == 3
    assert {i.namespace for i in store.search(("users", "bob", "facts"))} == {
        ("users", "bob", "facts")
    }
    assert store.search(("users", "carol")) == []
    assert store.search(("users", "ad")) == []  # a prefix is whole labels

    counted.take()
    hits = store.search(("users",), query="green tea")
    assert len(counted.take()) == 1
    assert hits[0].value["fact"] == "Ada drinks green tea"
    assert {i.namespace[0] for i in hits} == {"users"}
    assert store.search(("users",), query="coffee")[0].value["fact"] == "Bob drinks coffee"
    everywhere = store.search((), query="moon rock")
    assert everywhere[0].key == "noise"

    assert [i.key for i in store.search(("users",), filter={"rank": {"$gte": 2}})] == [
        "city",
        "tea",
    ]
    assert [i.value["rank"] for i in store.search(("users",), limit=1, offset=1)] == [2]
    assert len(store.search(("users",), query="drinks", limit=1)) == 1


def test_list_namespaces(store: LettaStore, letta: Letta, agent_id: str) -> None:
    store.put(("users", "ada", "facts"), "a", {"x": 1})
    store.put(("users", "bob", "prefs"), "b", {"x": 2})
    store.put(("docs", "v1"), "c", {"x": 3})
    letta.agents.passages.create(agent_id, text="A note the agent wrote itself")

    assert store.list_namespaces() == [
        ("docs", "v1"),
        ("letta", "archival"),
        ("letta", "blocks"),
        ("users", "ada", "facts"),
        ("users", "bob", "prefs"),
    ]
    assert store.list_namespaces(prefix=("users",)) == [
        ("users", "ada", "facts"),
        ("users", "bob", "prefs"),
    ]
    assert store.list_namespaces(suffix=("facts",)) == [("users", "ada", "facts")]
    assert store.list_namespaces(prefix=("users", "*", "prefs")) == [("users", "bob", "prefs")]
    assert store.list_namespaces(prefix=("users",), max_depth=2) == [
        ("users", "ada"),
        ("users", "bob"),
    ]
    assert store.list_namespaces(limit=2, offset=1) == [("letta", "archival"), ("letta", "blocks")]


def test_delete_reaches_the_server(store: LettaStore, letta: Letta, agent_id: str) -> None:
    store.put(("memories",), "k", {"fact": "to be forgotten"})
    assert len(passages(letta, agent_id)) == 1

    store.delete(("memories",), "k")

    assert passages(letta, agent_id) == []
    assert store.get(("memories",), "k") is None
    store.delete(("memories",), "k")  # deleting a missing key is a no-op


def test_a_fresh_process_reads_the_item(store: LettaStore, base_url: str, agent_id: str) -> None:
    store.put(("memories", "ada"), "tea", {"fact": "Ada drinks green tea"})

    reader = in_subprocess(
        """
        item = store.get(("memories", "ada"), "tea")
        hits = store.search(("memories",), query="Ada tea")
        print(json.dumps([item.value, hits[0].key, item.created_at.isoformat()]))
        """,
        base_url,
        agent_id,
    )
    out, err = reader.communicate(timeout=120)

    assert reader.returncode == 0, err
    value, key, created = json.loads(out)
    assert (value, key) == ({"fact": "Ada drinks green tea"}, "tea")
    here = store.get(("memories", "ada"), "tea")
    assert here is not None
    assert created == here.created_at.isoformat()


def test_concurrent_puts_of_one_key_leave_one_item(
    store: LettaStore, letta: Letta, base_url: str, agent_id: str
) -> None:
    start = time.time() + 10  # the writers start together, after their imports
    writers = [
        in_subprocess(
            f"""
            import time
            time.sleep(max(0.0, START - time.time()))
            store.put(("shared",), "counter", {{"writer": {n}}})
            print(time.time())
            """.replace("START", str(start)),
            base_url,
            agent_id,
        )
        for n in range(3)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err

    item = store.get(("shared",), "counter")

    assert item is not None
    assert item.value["writer"] in {0, 1, 2}
    texts = [t for t in passages(letta, agent_id) if '"key": "counter"' in t]
    assert len(texts) == 1  # the get removed any passage a race left behind
    assert json.loads(texts[0].splitlines()[-1])["value"] == item.value
    assert len(store.search(("shared",))) == 1


def test_blocks_are_the_agents_core_memory(store: LettaStore, letta: Letta, agent_id: str) -> None:
    human = store.get(("letta", "blocks"), "human")
    assert human is not None
    assert human.value["value"] == "Name: Ada"
    assert store.get(("letta", "blocks"), "nope") is None
    assert {i.key for i in store.search(("letta", "blocks"))} == {"human", "persona"}
    assert [i.key for i in store.search(("letta", "blocks"), query="concise")] == ["persona"]

    store.put(("letta", "blocks"), "human", {"value": "Name: Ada Lovelace"})
    assert store.attach_archival_tools() == ["archival_memory_search", "archival_memory_insert"]
    tools = {tool.name for tool in letta.agents.tools.list(agent_id)}
    assert {"archival_memory_search", "archival_memory_insert"} <= tools

    assert letta.agents.blocks.retrieve("human", agent_id=agent_id).value == "Name: Ada Lovelace"


def test_what_the_agent_inserted_shows_under_letta_archival(
    store: LettaStore, letta: Letta, agent_id: str
) -> None:
    store.put(("memories",), "mine", {"fact": "Ada likes cats"})
    [own] = letta.agents.passages.create(agent_id, text="The agent noted: Ada likes cats")

    listed = store.search(("letta", "archival"))
    assert [(i.key, i.value["text"]) for i in listed] == [(own.id, own.text)]
    got = store.get(("letta", "archival"), own.id or "")
    assert got is not None
    assert got.value["text"] == own.text
    both = store.search((), query="Ada cats")
    assert {i.namespace for i in both} >= {("letta", "archival"), ("memories",)}

    store.delete(("letta", "archival"), own.id or "")
    assert store.search(("letta", "archival")) == []
    assert len(passages(letta, agent_id)) == 1  # the store's item stays


def test_a_failed_put_stores_nothing(store: LettaStore, letta: Letta, agent_id: str) -> None:
    store.put(("memories",), "k", {"fact": "kept"})
    huge = {"fact": " ".join(f"word{i}" for i in range(60_000))}

    with pytest.raises((LettaBadRequestError, LettaUnprocessableError, LettaAPIError)):
        store.put(("memories",), "k", huge)

    item = store.get(("memories",), "k")
    assert item is not None
    assert item.value == {"fact": "kept"}
    assert len(passages(letta, agent_id)) == 1


async def test_async_twins(
    store: LettaStore, counted: Counted, letta: Letta, agent_id: str
) -> None:
    assert await store.aget(("a",), "k") is None
    await store.aput(("a", "b"), "k", {"fact": "async green tea"})
    await store.aput(("a", "b"), "k", {"fact": "async black tea"})
    counted.take()

    item = await store.aget(("a", "b"), "k")
    assert len(counted.take()) == 1
    assert item is not None
    assert item.value == {"fact": "async black tea"}
    hits = await store.asearch(("a",), query="black tea")
    assert [i.key for i in hits] == ["k"]
    assert await store.alist_namespaces(prefix=("a",)) == [("a", "b")]
    assert {i.key for i in await store.asearch(("letta", "blocks"))} == {"human", "persona"}
    human = await store.aget(("letta", "blocks"), "human")
    assert human is not None
    assert human.value["value"] == "Name: Ada"
    assert len(passages(letta, agent_id)) == 1

    await store.adelete(("a", "b"), "k")
    assert await store.aattach_archival_tools() == [
        "archival_memory_search",
        "archival_memory_insert",
    ]
    assert await store.aattach_archival_tools() == []

    assert passages(letta, agent_id) == []
    assert await store.asearch(("a",)) == []


def test_a_batch_runs_in_order(store: LettaStore) -> None:
    from langgraph.store.base import GetOp, PutOp, SearchOp

    results = store.batch(
        [
            PutOp(("b",), "k", {"v": 1}),
            GetOp(("b",), "k"),
            PutOp(("b",), "k", None),
            GetOp(("b",), "k"),
            SearchOp(("b",)),
        ]
    )

    assert results[0] is None
    assert isinstance(results[1], Item)
    assert results[1].value == {"v": 1}
    assert results[2:] == [None, None, []]


def test_the_store_example() -> None:
    from tests.integration_tests.test_examples import run_example

    output = run_example("langgraph_store.py")

    for line in (
        "[ok] the agent's archival memory holds it",
        "[ok] bob's thread found alice's fact",
        "[ok] the agent recalled the fact",
        "[ok] the agent's note is in the store",
        "[ok] a store put edited the agent's core memory block",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_same_answers_as_langgraphs_in_memory_store(store: LettaStore) -> None:
    """LangGraph ships no store conformance suite: InMemoryStore is the reference."""
    from langgraph.store.memory import InMemoryStore

    reference = InMemoryStore()

    def both(method: str, *args: object, **kwargs: object) -> tuple[object, object]:
        return getattr(store, method)(*args, **kwargs), getattr(reference, method)(*args, **kwargs)

    def shape(result: object) -> object:
        if isinstance(result, list):
            return sorted((shape(r) for r in result), key=repr)
        if isinstance(result, Item):
            return (result.namespace, result.key, result.value)
        return result

    for namespace, key, value in [
        (("u", "ada", "facts"), "tea", {"fact": "green tea", "n": 1}),
        (("u", "ada", "facts"), "city", {"fact": "London", "n": 2}),
        (("u", "bob"), "tea", {"fact": "coffee", "n": 3}),
        (("docs",), "readme", {"text": "hello", "n": 4}),
        (("u", "ada", "facts"), "tea", {"fact": "black tea", "n": 5}),  # replaces
    ]:
        both("put", namespace, key, value)
    both("delete", ("u", "bob"), "tea")
    both("put", ("u", "bob"), "city", {"fact": "Paris", "n": 6})

    for args, kwargs in [
        ((("u", "ada", "facts"), "tea"), {}),
        ((("u", "bob"), "tea"), {}),
        ((("u",), "tea"), {}),
    ]:
        ours, theirs = both("get", *args, **kwargs)
        assert shape(ours) == shape(theirs), args
    for args, kwargs in [
        ((("u",),), {}),
        ((("u", "ada"),), {}),
        ((("u",),), {"filter": {"n": {"$gt": 2}}}),
        ((("u",),), {"filter": {"fact": "Paris"}}),
        ((("nothing",),), {}),
        (((),), {"filter": {"n": 4}}),
    ]:
        ours, theirs = both("search", *args, **kwargs)
        assert shape(ours) == shape(theirs), (args, kwargs)
    ours, theirs = both("search", ("u",), limit=2, offset=1)
    assert len(ours) == len(theirs) == 2
    # InMemoryStore also lists namespaces a get or a delete touched (its dict of dicts
    # keeps them, empty); list the namespaces that hold items, as ours does
    items = reference.search((), limit=100)
    reference = InMemoryStore()
    for item in items:
        reference.put(item.namespace, item.key, item.value)
    for kwargs in [
        {"prefix": ("u",)},
        {"prefix": ("u",), "max_depth": 2},
        {"suffix": ("facts",)},
        {"prefix": ("u", "*", "facts")},
        {"prefix": ("docs",), "limit": 1},
    ]:
        ours, theirs = both("list_namespaces", **kwargs)
        assert ours == theirs, kwargs


def test_a_query_finds_a_sparse_prefix_among_nearer_passages(
    store: LettaStore, counted: Counted, letta: Letta, agent_id: str
) -> None:
    # Letta applies top_k before the tag filter: 60 nearer passages must not hide the item
    for i in range(60):
        letta.agents.passages.create(agent_id, text=f"green tea green tea note {i}")
    store.put(("users", "ada"), "tea", {"fact": "Ada drinks tea"})
    counted.take()

    hits = store.search(("users", "ada"), query="green tea")

    assert [i.key for i in hits] == ["tea"]
    assert len(counted.take()) == 1
