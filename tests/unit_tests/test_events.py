"""Decoding Letta's event stream: the same events as letta-client's own decoder, faster."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import letta_client
import pytest
import yaml
from letta_client import Letta
from letta_client.types.agents import AssistantMessage

from langchain_letta.events import iter_events, letta_models

ROOT = Path(__file__).resolve().parents[2]
CONVERSATION = "conv-00000000-0000-4000-8000-000000000000"


def recorded_streams() -> Iterator[tuple[str, str]]:
    """Every event-stream body the cassettes hold, and the long token stream of the bench."""
    for path in sorted((ROOT / "cassettes").glob("*/*.yaml")):
        for number, interaction in enumerate(yaml.safe_load(path.read_text())["interactions"]):
            response = interaction["response"]
            if "event-stream" in str(response["headers"].get("content-type")):
                yield f"{path.parent.name}/{path.stem}#{number}", response["body"]["string"]
    long_stream = ROOT / "benchmarks" / "data" / "long_stream.sse.gz"
    yield "long_stream", gzip.decompress(long_stream.read_bytes()).decode()


def recorded_listings() -> Iterator[tuple[str, list[Any]]]:
    """Every non-empty page of listed messages the cassettes hold."""
    for path in sorted((ROOT / "cassettes").glob("*/*.yaml")):
        for number, interaction in enumerate(yaml.safe_load(path.read_text())["interactions"]):
            request, page = interaction["request"], interaction["response"].get("json")
            if request["method"] == "GET" and "/messages" in request["uri"] and page:
                yield f"{path.parent.name}/{path.stem}#{number}", page


LISTINGS = dict(recorded_listings())


def test_listed_messages_equal_what_letta_client_decodes() -> None:
    for name, page in LISTINGS.items():
        answer = httpx.Response(200, json=page)
        http = httpx.Client(transport=httpx.MockTransport(lambda _, answer=answer: answer))
        sdk = Letta(base_url="http://letta.invalid", http_client=http)

        theirs = sdk.conversations.messages.list(CONVERSATION).items  # this page alone
        ours = letta_models(page)

        assert [(type(item), item.model_dump()) for item in ours] == [
            (type(item), item.model_dump()) for item in theirs
        ], name


def test_the_recorded_listings_cover_the_kinds_a_history_folds() -> None:
    kinds = {item["message_type"] for page in LISTINGS.values() for item in page}

    assert {
        "system_message",
        "user_message",
        "assistant_message",
        "reasoning_message",
        "tool_call_message",
        "tool_return_message",
        "approval_request_message",
    } <= kinds


def test_a_listing_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(TypeError, match="not a list"):
        letta_models({"detail": "oops"})


def client_answering(body: str) -> Letta:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=body.encode())

    return Letta(
        base_url="http://letta.invalid",
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
    )


def outcome(decode: Callable[[str], list[Any]], body: str) -> list[Any]:
    """The events' types and fields, then the error the stream ended with, if any."""
    events: list[Any] = []
    try:
        for event in decode(body):
            events.append((type(event), event.model_dump()))
    except letta_client.APIStatusError as error:
        events.append((type(error), str(error), error.body))
    return events


def decoded(body: str) -> list[Any]:
    client = client_answering(body)
    with client.conversations.messages.with_streaming_response.create(
        CONVERSATION, messages=[{"role": "user", "content": "x"}]
    ) as response:
        return list(iter_events(response))


def by_sdk(body: str) -> list[Any]:
    client = client_answering(body)
    return list(
        client.conversations.messages.create(
            CONVERSATION, messages=[{"role": "user", "content": "x"}]
        )
    )


STREAMS = dict(recorded_streams())


def test_the_recordings_cover_every_kind_of_event_the_chunker_reads() -> None:
    kinds = {
        fields["message_type"] if isinstance(fields, dict) else "error event"
        for body in STREAMS.values()
        for _, fields, *_ in outcome(by_sdk, body)
    }

    assert {
        "ping",
        "reasoning_message",
        "assistant_message",
        "tool_call_message",
        "tool_return_message",
        "approval_request_message",
        "stop_reason",
        "usage_statistics",
        "error event",
    } <= kinds


def test_events_equal_what_letta_client_decodes() -> None:
    for name, body in STREAMS.items():
        assert outcome(decoded, body) == outcome(by_sdk, body), name


def test_an_error_event_raises_an_api_error() -> None:
    body = 'data: {"message_type": "ping", "id": "ping-1", "date": "2026-01-01T00:00:00Z"}\n\n'
    body += 'event: error\ndata: {"detail": "the run failed"}\n\n'

    with pytest.raises(letta_client.APIStatusError, match="the run failed"):
        decoded(body)


def test_fields_letta_does_not_send_are_read_by_the_rules_of_server_sent_events() -> None:
    message = '{"message_type": "assistant_message", "id": "message-1", '
    body = (
        ": a comment\nid: 7\nretry: 1000\n"
        f'data: {message}\ndata: "date": "2026-01-01T00:00:00Z", "content": "hi"}}\n\n'
        'event: something-else\ndata: {"message_type": "ping"}\n\n'
        # the last event has no blank line after it
        'data:{"message_type": "stop_reason", "stop_reason": "end_turn"}'
    )

    events = decoded(body)

    assert isinstance(events[0], AssistantMessage)
    assert events[0].content == "hi"
    assert [event.message_type for event in events] == ["assistant_message", "stop_reason"]


def test_unknown_and_malformed_events_are_kept_not_dropped() -> None:
    body = (
        'data: {"message_type": "event_from_the_future", "id": "x-1", "run_id": "run-1"}\n\n'
        'data: {"message_type": "assistant_message", "id": "message-1", "date": "not a date", '
        '"content": "hi"}\n\n'
        "data: [DONE]\n\n"
        'data: {"message_type": "ping"}\n\n'
    )

    events = decoded(body)

    assert [event.message_type for event in events] == [
        "event_from_the_future",
        "assistant_message",
    ]
    assert events[0].run_id == "run-1"
    assert isinstance(events[1], AssistantMessage)
    assert events[1].content == "hi"
