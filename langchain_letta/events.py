"""Letta's messages and stream events decoded straight into letta-client's models, fast.

letta-client builds each message (a listed one, or a stream event) by trying every member
of its message union in Python: about 30 µs an item, most of a token stream's client CPU
and of a history read's. Here each item goes straight to its own model, picked by
``message_type`` (the unions' discriminator), and is checked by pydantic's compiled
validator: about 3 µs. The objects are letta-client's own classes, so nothing downstream
changes. An item that fails validation is built leniently, as letta-client does; one of
a type this letta-client does not know keeps its fields as attributes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any, get_args

import letta_client
import pydantic
from letta_client.types.agents.letta_streaming_response import LettaStreamingResponse
from letta_client.types.agents.message import Message

__all__ = ["GarbledStreamError", "aiter_events", "iter_events", "letta_model", "letta_models"]


class GarbledStreamError(ValueError):
    """An event of the stream is not the JSON object Letta sends."""


def _literals(annotation: Any) -> Iterator[str]:
    for arg in get_args(annotation):
        if isinstance(arg, str):
            yield arg
        else:
            yield from _literals(arg)


_MODELS: dict[str, type[pydantic.BaseModel]] = {
    kind: model
    for union in (Message, LettaStreamingResponse)
    for model in get_args(get_args(union)[0])
    for kind in _literals(model.model_fields["message_type"].annotation)
}


class _Decoder:
    """The fields of server-sent events, one line at a time (the subset Letta sends)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._event: str | None = None
        self._data: list[str] = []
        self.done = False

    def line(self, line: str) -> Any | None:
        """The event that ``line`` completes, if any."""
        if line:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            return None
        return self.end()

    def end(self) -> Any | None:
        """The event pending at a blank line or at the end of the stream, if any."""
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = None, []
        if not data or self.done:
            return None
        if data.startswith("[DONE]"):
            self.done = True
            return None
        if event == "error":  # as letta-client reports it
            body = _json_or_text(data)
            raise letta_client.APIStatusError(
                str(body), response=self._response.http_response, body=body
            )
        if event is not None:
            return None
        try:
            parsed = json.loads(data)
        except ValueError as error:
            raise GarbledStreamError(f"unreadable event data: {data[:80]!r}") from error
        if not isinstance(parsed, dict):
            raise GarbledStreamError(f"event data is not an object: {data[:80]!r}")
        return letta_model(parsed)


def iter_events(response: Any, lines: Iterator[str] | None = None) -> Iterator[Any]:
    """The events of a streaming letta-client response (``with_streaming_response``).

    The stream is left at ``[DONE]``, as letta-client leaves it: Letta ends the body only
    once it has finished the run (about 100 ms later on the local stack). ``lines``, the
    response's ``iter_lines()`` when given, holds the rest then (a turn has it read to the
    end off its path, see ``langchain_letta.draining``).
    """
    decoder = _Decoder(response)
    lines = response.iter_lines() if lines is None else lines
    for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
        if decoder.done:
            return
    event = decoder.end()
    if event is not None:
        yield event


async def aiter_events(
    response: Any, lines: AsyncIterator[str] | None = None
) -> AsyncIterator[Any]:
    """Async twin of :func:`iter_events`."""
    decoder = _Decoder(response)
    lines = response.iter_lines() if lines is None else lines
    async for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
        if decoder.done:
            return
    event = decoder.end()
    if event is not None:
        yield event


def letta_model(data: dict[str, Any]) -> Any:
    """The letta-client model of one message or stream event given as JSON data."""
    model = _MODELS.get(data.get("message_type", ""))
    if model is None:
        return SimpleNamespace(**data)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError:
        return model.construct(**data)


def letta_models(page: object) -> list[Any]:
    """The letta-client models of one page of a message listing (a JSON array)."""
    if not isinstance(page, list):
        raise TypeError(f"Letta answered a message listing with {type(page).__name__}, not a list")
    return [letta_model(item) for item in page]


def _json_or_text(data: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return data
