"""LettaStore without a server: the passage encoding, the checks, nothing sent on bad input."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp
from letta_client import AsyncLetta, Letta

from langchain_letta import LettaInputError, LettaStore
from langchain_letta.store.encoding import (
    MAX_KEY_CHARS,
    check_value,
    decode,
    encode,
    key_marker,
    matches_filter,
    prefix_marker,
    readable_text,
)

AGENT_ID = "agent-00000000-0000-4000-8000-000000000001"


def test_an_item_survives_its_passage_text() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = {"fact": "Ada drinks green tea", "n": 3, "nested": {"a": [1, "ü"]}}
    text, tags = encode(("memories", "ada"), "tea", value, created_at=created)

    stored = decode(text)

    assert stored is not None
    assert (stored.namespace, stored.key, stored.value) == (("memories", "ada"), "tea", value)
    assert stored.created_at == created
    assert text.startswith("fact: Ada drinks green tea\nn: 3\n")
    assert tags == ["langgraph-store", "ns:memories", "ns:memories.ada"]


def test_the_text_carries_a_marker_per_key_and_per_namespace_prefix() -> None:
    text, _ = encode(("a", "b"), "k", {"x": "y"})

    assert key_marker(("a", "b"), "k") in text
    assert prefix_marker(("a",)) in text
    assert prefix_marker(("a", "b")) in text
    assert prefix_marker(("a", "c")) not in text
    assert key_marker(("a", "b"), "k2") not in text


def test_markers_are_plain_hex_words_whatever_the_labels() -> None:
    # ``passages.list(search=...)`` is a SQL LIKE: %, _ and \ in labels must not reach it
    for namespace, key in [(("100%",), "a_b"), (("back\\slash",), "x"), (("émoji 🎉",), "k")]:
        for marker in (key_marker(namespace, key), prefix_marker(namespace)):
            assert marker[:3] in {"lgk", "lgn"}
            assert all(ch in "0123456789abcdef" for ch in marker[3:])


def test_a_passage_the_store_did_not_write_decodes_to_none() -> None:
    assert decode("The agent noted: Ada likes cats") is None
    text, _ = encode(("a",), "k", {"x": 1})
    forged = text.replace('"key": "k"', '"key": "other"')
    assert decode(forged) is None  # the marker no longer matches the JSON


def test_index_picks_what_the_embedding_reads() -> None:
    value = {"fact": "tea", "meta": {"source": "chat"}, "n": 1}

    assert readable_text(value) == 'fact: tea\nmeta: {"source": "chat"}\nn: 1'
    assert readable_text(value, ["meta.source"]) == "meta.source: chat"
    assert readable_text(value, False) == ""


def test_filters_follow_langgraph() -> None:
    value = {"kind": "fact", "score": 5, "meta": {"lang": "en"}}

    assert matches_filter(value, {"kind": "fact"})
    assert matches_filter(value, {"score": {"$gte": 5, "$lt": 6}})
    assert matches_filter(value, {"meta.lang": "en"})
    assert not matches_filter(value, {"kind": {"$ne": "fact"}})
    assert not matches_filter(value, {"score": {"$gt": "x"}})  # unlike types never match
    assert not matches_filter(value, {"missing": 1})


class _NoNetwork(httpx.BaseTransport, httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500)


@pytest.fixture
def transport() -> _NoNetwork:
    return _NoNetwork()


@pytest.fixture
def store(transport: _NoNetwork) -> LettaStore:
    base = "http://letta.invalid"
    return LettaStore(
        AGENT_ID,
        client=Letta(base_url=base, http_client=httpx.Client(transport=transport)),
        async_client=AsyncLetta(base_url=base, http_client=httpx.AsyncClient(transport=transport)),
    )


BAD_OPS: list[Any] = [
    PutOp(("",), "k", {"a": 1}),
    PutOp(("a", "b.c"), "k", {"a": 1}),
    PutOp(("a", 3), "k", {"a": 1}),  # type: ignore[arg-type]
    PutOp((), "k", {"a": 1}),
    PutOp(("a",), "", {"a": 1}),
    PutOp(("a",), "k" * (MAX_KEY_CHARS + 1), {"a": 1}),
    PutOp(("a",), "k", {"when": datetime.now()}),
    PutOp(("a",), "k", {"x": float("nan")}),
    PutOp(("a",), "k", ["not", "a", "dict"]),  # type: ignore[arg-type]
    PutOp(("letta", "blocks"), "human", None),
    PutOp(("letta", "blocks"), "human", {"text": "no value field"}),
    PutOp(("letta", "archival"), "passage-1", {"text": "servers choose passage ids"}),
    PutOp(("letta", "mine"), "k", {"a": 1}),
    GetOp(("a",), 7),  # type: ignore[arg-type]
    SearchOp(("a",), limit=-1),
    ListNamespacesOp(max_depth=0),
]


@pytest.mark.parametrize("bad", BAD_OPS)
def test_bad_input_raises_before_any_request(
    store: LettaStore, transport: _NoNetwork, bad: Any
) -> None:
    good = GetOp(("a",), "k")
    with pytest.raises(LettaInputError):
        store.batch([good, bad])  # the good op before it is not sent either
    assert transport.requests == []


@pytest.mark.parametrize("bad", BAD_OPS[:4])
async def test_bad_input_raises_before_any_request_async(
    store: LettaStore, transport: _NoNetwork, bad: Any
) -> None:
    with pytest.raises(LettaInputError):
        await store.abatch([bad])
    assert transport.requests == []


def test_not_json_serialisable_names_the_problem() -> None:
    with pytest.raises(LettaInputError, match="JSON"):
        check_value({"s": {1, 2}})


def test_the_repr_shows_no_secret(transport: _NoNetwork) -> None:
    store = LettaStore(AGENT_ID, base_url="http://user:pw@letta.invalid", api_key="sk-secret")
    assert "secret" not in repr(store)
    assert "pw" not in repr(store)


def test_the_package_imports_without_langgraph(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys\n"
        "names = ['langgraph', 'langgraph.store', 'langgraph.store.base']\n"
        "sys.modules.update({name: None for name in names})\n"
        "import langchain_letta\n"
        "try:\n"
        "    langchain_letta.LettaStore\n"
        "except ImportError as e:\n"
        "    print('needs extra' if 'langchain-letta[langgraph]' in str(e) else e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "needs extra"


def test_the_fake_llm_embeds_similar_texts_close() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import fake_llm

    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(fake_llm.embed(a), fake_llm.embed(b), strict=True))

    assert len(fake_llm.embed("x")) == 1536
    assert cosine("Ada drinks green tea", "what tea does Ada drink") > 0.3
    assert cosine("Ada drinks green tea", "Paris is a city") == 0.0
    payload = fake_llm.embeddings_json({"input": ["a", "b"], "encoding_format": "base64"})
    assert [row["index"] for row in payload["data"]] == [0, 1]


def test_only_passages_the_store_tagged_are_items() -> None:
    from langchain_letta.store.rows import Row as _Row

    text, tags = encode(("a",), "k", {"x": 1})
    now = datetime.now(UTC)

    assert _Row("passage-1", text, now, tags).item is not None
    assert _Row("passage-2", text, now, []).item is None  # the agent copied it


def test_namespace_conditions_follow_langgraph() -> None:
    from langgraph.store.base import MatchCondition

    from langchain_letta.store.rows import namespace_matches as _namespace_matches

    namespace = ("users", "ada", "facts")
    assert _namespace_matches(namespace, MatchCondition("prefix", ("users", "*")))
    assert _namespace_matches(namespace, MatchCondition("suffix", ("ada", "facts")))
    assert _namespace_matches(namespace, MatchCondition("suffix", ()))
    assert not _namespace_matches(namespace, MatchCondition("prefix", ("ada",)))
    assert not _namespace_matches(("users",), MatchCondition("prefix", ("users", "ada")))


def test_a_page_object_yields_its_items() -> None:
    from types import SimpleNamespace

    from langchain_letta.store.rows import page_items

    assert page_items(SimpleNamespace(items=["a", "b"])) == ["a", "b"]
    assert page_items(["c"]) == ["c"]
