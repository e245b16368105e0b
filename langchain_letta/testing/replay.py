"""Replaying with the test's own ids: real ids bound to a cassette's placeholders.

A cassette stores placeholders where the recording had ids. A replayed test sends real ids
again: the agent id it reads from its environment (the same as when recording, or another
environment's), and `otid` values it mints per call. Each id a replayed request carries
that the cassette does not hold is bound, at its first appearance, to the placeholder the
recording has at the same place, and stays bound for the rest of the cassette; responses
are played back with the bound placeholders turned into the test's ids. So a test replays
whichever agent or conversation id it is handed, as long as its traffic is the same.

One real id stands for one placeholder: two ids of the test where the recording had one,
or one where it had two, do not replay. A response played before the test's id first
appears in a request still carries the placeholder. Everything but ids (texts, session
keys, names) must be the same as recorded.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_letta.testing.bodies import NOT_JSON, as_json, body_text
from langchain_letta.testing.ids import find_ids, replace_ids
from langchain_letta.testing.matching import body_json
from langchain_letta.testing.scrub import SCRUBBED, SECRET_QUERY_PARAMETERS, scrub_json, scrub_text

__all__ = ["ReplayIds", "install_replay_ids", "replay_ids"]

_MASK = "\x00"


@dataclass(frozen=True)
class _Shape:
    """A request as matching sees it, ids masked out, and its ids in order."""

    masked: str
    ids: tuple[str, ...]


def _shape(request: Any) -> _Shape:
    query = [
        (key, SCRUBBED if key.lower() in SECRET_QUERY_PARAMETERS else scrub_text(value))
        for key, value in request.query
    ]
    body = body_json(request.body)
    canonical = json.dumps([request.method, request.path, query, scrub_json(body)], sort_keys=True)
    return _Shape(replace_ids(canonical, _masked), tuple(find_ids(canonical)))


def _masked(_: str) -> str:
    return _MASK


def _ids_in(value: Any) -> list[str]:
    text = body_text(value)
    return find_ids(text) if text else []


class ReplayIds:
    """The real ids of one replay and the placeholders of one cassette they stand for."""

    def __init__(self, requests: Sequence[Any], responses: Sequence[Any]) -> None:
        self.shapes = [_shape(request) for request in requests]
        self.known: set[str] = set()
        """Every id the cassette holds: sent as it is, it matches only itself."""
        for request, response in zip(requests, responses, strict=True):
            self.known.update(_ids_in(request.uri) + _ids_in(request.body))
            self.known.update(_ids_in((response.get("body") or {}).get("string")))
        self.placeholder_of: dict[str, str] = {}
        self.real_of: dict[str, str] = {}
        self.lock = threading.RLock()

    # --- binding --------------------------------------------------------------------------

    def _unify(
        self, sent: Sequence[str], recorded: Sequence[str], binding: dict[str, str]
    ) -> str | None:
        """Extend `binding` so `sent` ids stand for `recorded` ones, or say why not."""
        for real, placeholder in zip(sent, recorded, strict=True):
            reason = self._why_not(real, placeholder, binding)
            if reason:
                return reason
            if real not in self.known and real not in self.placeholder_of:
                binding[real] = placeholder
        return None

    def _why_not(self, real: str, placeholder: str, binding: dict[str, str]) -> str | None:
        if real in self.known:
            if real == placeholder:
                return None
            return f"sent {real}, a recorded id, where the recording has {placeholder}"
        bound = self.placeholder_of.get(real) or binding.get(real)
        if bound:
            if bound == placeholder:
                return None
            return (
                f"sent {real}, which this replay maps to the recorded {bound}, where the "
                f"recording has {placeholder}: the recording used another id here (the test "
                "uses one id where the recording had two)"
            )
        taken = self.real_of.get(placeholder) or next(
            (key for key, value in binding.items() if value == placeholder), None
        )
        if taken:
            return (
                f"sent {real} where the recording has {placeholder}, which this replay maps "
                f"to {taken} (the test uses two ids where the recording had one)"
            )
        return None

    def _binding_for(self, shape: _Shape, cassette: Any) -> dict[str, str] | None:
        """New bindings that make `shape` one of the cassette's requests not yet played."""
        repeats = getattr(cassette, "allow_playback_repeats", False)
        for index, recorded in enumerate(self.shapes):
            if recorded.masked != shape.masked:
                continue
            if cassette.play_counts[index] and not repeats:
                continue
            binding: dict[str, str] = {}
            if self._unify(shape.ids, recorded.ids, binding) is None:
                return binding
        return None

    def bind(self, binding: dict[str, str]) -> None:
        """Record that each real id of `binding` stands for its placeholder."""
        self.placeholder_of.update(binding)
        self.real_of.update({placeholder: real for real, placeholder in binding.items()})

    def explain(self, recorded: str, sent: str) -> str | None:
        """How a sent string differs from a recorded one, ids compared as this replay maps them.

        `None` when the two are the same up to ids that this replay could map.
        """
        recorded_ids, sent_ids = find_ids(recorded), find_ids(sent)
        masks_differ = replace_ids(recorded, _masked) != replace_ids(sent, _masked)
        if masks_differ or len(recorded_ids) != len(sent_ids):
            if recorded_ids and not sent_ids:
                return f"recorded {recorded!r} (an id), sent {sent!r} (no id)"
            if sent_ids and not recorded_ids:
                return f"recorded {recorded!r} (no id), sent {sent!r} (an id)"
            return f"recorded {recorded!r}, sent {sent!r}"
        return self._unify(sent_ids, recorded_ids, {})

    # --- translation ----------------------------------------------------------------------

    def translate(self, request: Any, cassette: Any, *, commit: bool = False) -> Any:
        """`request` with the real ids it carries replaced by the placeholders they stand for.

        Ids seen for the first time are bound to the placeholders at the same places in the
        first unplayed recorded request of the same shape (with `commit`, for good).
        """
        with self.lock:
            shape = _shape(request)
            mapping = dict(self.placeholder_of)
            if any(found not in self.known and found not in mapping for found in shape.ids):
                binding = self._binding_for(shape, cassette)
                if binding:
                    mapping.update(binding)
                    if commit:
                        self.bind(binding)
            return _substituted(request, mapping)

    def bind_otids(self, sent: Any, recorded: Any) -> None:
        """Bind the `otid` values of a played request to the recorded ones."""
        binding: dict[str, str] = {}
        _pair_otids(_json_of(sent.body), _json_of(recorded.body), binding)
        with self.lock:
            self.bind(
                {
                    real: placeholder
                    for real, placeholder in binding.items()
                    if real not in self.known
                    and real not in self.placeholder_of
                    and placeholder not in self.real_of
                }
            )

    def to_real(self, response: Any) -> Any:
        """A copy of a recorded response with bound placeholders turned into the test's ids."""
        body = (response.get("body") or {}).get("string")
        text = body_text(body)
        if not self.real_of or not text:
            return response
        rewritten = replace_ids(text, lambda found: self.real_of.get(found, found))
        if rewritten == text:
            return response
        response = copy.deepcopy(response)
        response["body"]["string"] = rewritten.encode() if isinstance(body, bytes) else rewritten
        return response


def _json_of(body: Any) -> Any:
    parsed = as_json(body_text(body))
    return None if parsed is NOT_JSON else parsed


def _pair_otids(sent: Any, recorded: Any, binding: dict[str, str]) -> None:
    if isinstance(sent, dict) and isinstance(recorded, dict):
        for key, value in sent.items():
            old = recorded.get(key)
            if key == "otid" and isinstance(value, str) and isinstance(old, str):
                if find_ids(value) == [value] and find_ids(old) == [old]:
                    binding.setdefault(value, old)
            else:
                _pair_otids(value, old, binding)
    elif isinstance(sent, list) and isinstance(recorded, list):
        for new, old in zip(sent, recorded, strict=False):
            _pair_otids(new, old, binding)


def _substituted(request: Any, mapping: dict[str, str]) -> Any:
    if not mapping:
        return request

    def swap(text: str) -> str:
        return replace_ids(text, lambda found: mapping.get(found, found))

    uri = swap(request.uri)
    text = body_text(request.body)
    body = swap(text) if text is not None else None
    if uri == request.uri and body == text:
        return request
    translated = copy.copy(request)
    translated.uri = uri
    if body is not None and body != text:
        translated.body = body
    return translated


# --- wiring into vcrpy ---------------------------------------------------------------------


def replay_ids(cassette: Any) -> ReplayIds | None:
    """The id bindings of a Letta cassette being replayed (`None` if nothing to replay)."""
    from langchain_letta.testing.recording import LettaPersister

    if not isinstance(getattr(cassette, "_persister", None), LettaPersister):
        return None
    state: ReplayIds | None = cassette.__dict__.get("_letta_replay_ids")
    if state is None:
        loaded = cassette.data[: getattr(cassette, "_loaded_count", len(cassette.data))]
        state = ReplayIds([r for r, _ in loaded], [response for _, response in loaded])
        cassette._letta_replay_ids = state
    return state if state.shapes else None


def install_replay_ids() -> None:
    """Make vcrpy's cassettes replay with the test's ids (only cassettes of a Letta VCR)."""
    from vcr.cassette import Cassette

    if getattr(Cassette.play_response, "_letta", False):
        return
    can_play, play = Cassette.can_play_response_for, Cassette.play_response

    def can_play_response_for(self: Any, request: Any) -> Any:
        ids = replay_ids(self)
        return can_play(self, ids.translate(request, self) if ids else request)

    def play_response(self: Any, request: Any) -> Any:
        ids = replay_ids(self)
        if ids is None:
            return play(self, request)
        with ids.lock:
            translated = ids.translate(request, self, commit=True)
            response = play(self, translated)
            recorded = next((req for req, resp in self.data if resp is response), None)
            if recorded is not None:
                ids.bind_otids(request, recorded)
            return ids.to_real(response)

    play_response._letta = True  # type: ignore[attr-defined]
    Cassette.can_play_response_for = can_play_response_for
    Cassette.play_response = play_response
