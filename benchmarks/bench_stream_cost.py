"""4. CPU cost per event of turning a recorded long token stream into LangChain chunks.

The stream (``stream_tokens=True``, ``[long:3000]``) is recorded once from the live server
into ``data/long_stream.sse.gz`` and replayed through an ``httpx.MockTransport``, so the
network is out of the measurement and all three paths parse the very same bytes:

* raw: letta-client's ``conversations.messages.create`` consumed (SSE decoding and
  model construction);
* raw + ``TurnChunker.feed``: the conversion alone added on top;
* the LangChain floor: raw + one bare ``AIMessageChunk`` and ``ChatGenerationChunk`` per
  text event, the least any LangChain chat model pays per streamed token;
* a minimal LangChain chat model (``_MinimalModel``) streaming the same SDK events, one
  chunk per text event: LangChain's own ``stream`` plumbing without our code;
* ``ChatLetta.stream``: everything a user pays (callbacks, LangChain's stream plumbing).
"""

from __future__ import annotations

import gc
import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from letta_client import Letta

from benchmarks.common import Row, Section, Stat, log, new_agent, ratio, verdict
from langchain_letta import ChatLetta
from langchain_letta.messages import TurnChunker

GOAL = 1.25
WORDS = 3000
DATA = Path(__file__).resolve().parent / "data" / "long_stream.sse.gz"
MOCK_URL = "http://letta-mock.invalid"
CONVERSATION = "conv-00000000-0000-4000-8000-000000000000"


def record(url: str) -> bytes:
    """Record one long token stream from the live server (raw SSE bytes)."""
    client = Letta(base_url=url, timeout=300)
    agent_id = new_agent(client, "stream")
    try:
        conversation = client.conversations.create(agent_id=agent_id)
        with client.conversations.messages.with_streaming_response.create(
            conversation.id,
            messages=[{"role": "user", "content": f"[long:{WORDS}]"}],
            stream_tokens=True,
        ) as response:
            body = b"".join(response.iter_bytes())
    finally:
        client.agents.delete(agent_id)
    return body


def load_or_record(url: str | None) -> bytes:
    if not DATA.exists():
        if url is None:
            raise RuntimeError(f"{DATA} is missing and no server to record it from")
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_bytes(gzip.compress(record(url)))
        log(f"recorded {DATA.name}")
    return gzip.decompress(DATA.read_bytes())


def _mock_client(body: bytes) -> Letta:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # ChatLetta reads the agent (model, context window) once
            return httpx.Response(
                200, json={"id": "agent-bench", "llm_config": {"context_window": 128000}}
            )
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return Letta(
        base_url=MOCK_URL, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def _send(client: Letta) -> object:
    return client.conversations.messages.create(
        CONVERSATION, messages=[{"role": "user", "content": "x"}], stream_tokens=True
    )


class _MinimalModel(BaseChatModel):
    """The least a LangChain chat model over letta-client's stream can do."""

    client: Any

    @property
    def _llm_type(self) -> str:
        return "minimal-letta"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for event in _send(self.client):  # type: ignore[attr-defined]
            if getattr(event, "message_type", "") == "assistant_message":
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=event.content))
                if run_manager:
                    run_manager.on_llm_new_token(event.content, chunk=chunk)
                yield chunk


def _count(items: Iterable[Any]) -> int:
    """Consume ``items`` without keeping them; return how many there were."""
    count = 0
    for _ in items:
        count += 1
    return count


def _cpu(fn: Callable[[], int]) -> tuple[float, int]:
    gc.collect()  # start every sample from the same heap state
    start = time.process_time()
    events = fn()
    return time.process_time() - start, events


def run(url: str | None, repeats: int) -> Section:
    body = load_or_record(url)
    client = _mock_client(body)
    model = ChatLetta(
        agent_id="agent-bench",
        model="fake",
        base_url=MOCK_URL,
        client=client,
        async_client=None,
        sync_memory=False,  # CPU only: the memory check is a request, measured in section 1
    )
    config = {"configurable": {"conversation_id": CONVERSATION}}

    def raw() -> int:
        return _count(_send(client))  # type: ignore[arg-type]

    def feed() -> int:
        chunker = TurnChunker(CONVERSATION, "agent-bench")
        events = 0
        for event in _send(client):  # type: ignore[attr-defined]
            chunker.feed(event)
            events += 1
        chunker.finish()
        return events

    def floor() -> int:
        events = 0
        for event in _send(client):  # type: ignore[attr-defined]
            if getattr(event, "message_type", "") == "assistant_message":
                ChatGenerationChunk(message=AIMessageChunk(content=event.content))
            events += 1
        return events

    minimal_model = _MinimalModel(client=client)

    def minimal() -> int:
        return _count(minimal_model.stream("x"))

    def ours() -> int:
        return _count(model.stream("x", config=config))  # type: ignore[arg-type]

    paths = {"raw": raw, "feed": feed, "floor": floor, "minimal": minimal, "ours": ours}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    events = dict.fromkeys(paths, 0)
    for i in range(repeats + 1):
        names = list(paths)
        names = names[i % len(names) :] + names[: i % len(names)]  # rotate who goes first
        for name in names:
            seconds, count = _cpu(paths[name])
            if i:
                events[name] = count
                samples[name].append(seconds)
    n = events["raw"]
    per = {name: [s / n for s in values] for name, values in samples.items()}
    log(f"stream cost: {n} events, {events['ours']} chunks out of ChatLetta.stream")
    section = Section()
    us = 1e6
    feed_ratio = ratio(samples["feed"], samples["raw"])
    ours_ratio = ratio(samples["ours"], samples["raw"])
    floor_ratio = ratio(samples["floor"], samples["raw"])
    over_floor = ratio(samples["ours"], samples["floor"])
    minimal_ratio = ratio(samples["minimal"], samples["raw"])
    over_minimal = ratio(samples["ours"], samples["minimal"])
    section.rows.append(
        Row(
            "4 stream CPU",
            f"raw SDK + TurnChunker.feed, per event ({n} events)",
            Stat(per["feed"]).fmt(us, " µs"),
            Stat(per["raw"]).fmt(us, " µs"),
            feed_ratio.fmt(digits=2),
            f"<= {GOAL}",
            verdict(feed_ratio.median, GOAL),
        )
    )
    section.rows.append(
        Row(
            "4 stream CPU",
            "ChatLetta.stream end to end, per event",
            Stat(per["ours"]).fmt(us, " µs"),
            Stat(per["raw"]).fmt(us, " µs"),
            ours_ratio.fmt(digits=2),
            f"<= {GOAL}",
            verdict(ours_ratio.median, GOAL),
        )
    )
    section.notes.append(
        "4 stream CPU: per event, TurnChunker.feed adds "
        f"{(Stat(per['feed']).median - Stat(per['raw']).median) * us:.1f} µs over the raw parse "
        "(mostly building one AIMessageChunk, a pydantic model); ChatLetta.stream adds "
        f"{(Stat(per['ours']).median - Stat(per['feed']).median) * us:.1f} µs more, which is "
        "LangChain's own stream plumbing (ChatGenerationChunk, callback dispatch, metadata, "
        "the final merge). A minimal LangChain chat model over the same SDK stream pays "
        f"{(Stat(per['minimal']).median - Stat(per['raw']).median) * us:.1f} µs over the raw "
        "parse, so the end-to-end goal of 1.25x the raw SDK is below what any LangChain "
        "chat model can reach; ChatLetta is judged against that minimal model instead."
    )
    section.rows.append(
        Row(
            "4 stream CPU",
            "LangChain floor (1 AIMessageChunk + ChatGenerationChunk per token), per event",
            Stat(per["floor"]).fmt(us, " µs"),
            Stat(per["raw"]).fmt(us, " µs"),
            floor_ratio.fmt(digits=2),
            "-",
            "info",
        )
    )
    section.rows.append(
        Row(
            "4 stream CPU",
            "ChatLetta.stream vs the LangChain floor, per event",
            Stat(per["ours"]).fmt(us, " µs"),
            Stat(per["floor"]).fmt(us, " µs") + " (floor)",
            over_floor.fmt(digits=2),
            "-",
            "info",
        )
    )
    section.rows.append(
        Row(
            "4 stream CPU",
            "minimal LangChain chat model over the SDK stream (.stream), per event",
            Stat(per["minimal"]).fmt(us, " µs"),
            Stat(per["raw"]).fmt(us, " µs"),
            minimal_ratio.fmt(digits=2),
            "-",
            "info",
        )
    )
    section.rows.append(
        Row(
            "4 stream CPU",
            "ChatLetta.stream vs the minimal LangChain chat model, per event",
            Stat(per["ours"]).fmt(us, " µs"),
            Stat(per["minimal"]).fmt(us, " µs") + " (minimal)",
            over_minimal.fmt(digits=2),
            f"<= {GOAL}",
            verdict(over_minimal.median, GOAL),
        )
    )
    return section
