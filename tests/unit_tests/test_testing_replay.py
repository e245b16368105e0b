"""Replays with the test's own ids: binding at first appearance, ids played back, errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from langchain_letta.testing import (
    letta_serializer,
    letta_vcr_config,
    normalize_interactions,
    register_letta,
)

AGENT = "agent-a1a6ebd7-16f3-4612-a5ec-bdfc6ed56041"
OTHER_AGENT = "agent-5b0e3f7c-8a2d-4c1e-9f6b-2d7a9c4e1b30"
CONV = "conv-d51fcdc0-71a1-42ba-8491-5e81ff3667e4"
OTID = "0f6a3c52-1f0b-5a55-9d6e-4d7c0b0e2f11"
MESSAGE = "message-ca54f8e4-2fa0-4585-bdcf-74ab15b17c45"
RECORDED_HOST = "http://127.0.0.1:8283"
REPLAY_HOST = "http://letta-ci.invalid:8283"
TAG = "langchain-letta session: "


def interaction(method: str, path: str, body: Any, response: Any) -> dict[str, Any]:
    text = response if isinstance(response, str) else json.dumps(response)
    return {
        "request": {
            "method": method,
            "uri": RECORDED_HOST + path,
            "body": None if body is None else json.dumps(body),
            "headers": {},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": text},
        },
    }


def app_traffic(agent: str = AGENT, key: str = "ada") -> list[dict[str, Any]]:
    """What an app with an existing agent sends: its agent id comes first from the test."""
    search = f"summary_search={TAG.replace(' ', '+').replace(':', '%3A')}{key}"
    return [
        interaction("GET", f"/v1/agents/{agent}", None, {"id": agent, "name": "app"}),
        interaction("GET", f"/v1/conversations/?agent_id={agent}&{search}", None, []),
        interaction(
            "POST",
            f"/v1/conversations/?agent_id={agent}",
            {"summary": TAG + key},
            {"id": CONV, "agent_id": agent},
        ),
        interaction(
            "POST",
            f"/v1/conversations/{CONV}/messages",
            {"messages": [{"role": "user", "content": "hi", "otid": OTID}]},
            f'data: {{"id":"{MESSAGE}","otid":"{OTID}","message_type":"assistant_message",'
            f'"content":"Echo: hi"}}\n\ndata: [DONE]\n\n',
        ),
    ]


def write_cassette(root: Path, name: str, traffic: list[dict[str, Any]]) -> Path:
    path = root / "test_app" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    data = {"interactions": normalize_interactions(traffic, f"test_app/{name}.yaml")}
    path.write_text(letta_serializer.serialize(data | {"version": 1}))
    return path


@pytest.fixture
def cassette_path(tmp_path: Path) -> Path:
    return write_cassette(tmp_path, "test_one", app_traffic())


@contextmanager
def replaying(path: Path) -> Iterator[Any]:
    recorder = vcr.VCR(record_mode="none")
    register_letta(recorder)
    with recorder.use_cassette(str(path), **letta_vcr_config()) as cassette:
        yield cassette


def run_app(agent: str, key: str = "ada", otid: str | None = None) -> dict[str, Any]:
    """The app's traffic at replay, each request built from the previous responses."""
    found = httpx.get(f"{REPLAY_HOST}/v1/agents/{agent}").json()
    listed = httpx.get(
        f"{REPLAY_HOST}/v1/conversations/", params={"agent_id": agent, "summary_search": TAG + key}
    ).json()
    created = httpx.post(
        f"{REPLAY_HOST}/v1/conversations/", params={"agent_id": agent}, json={"summary": TAG + key}
    ).json()
    message = {"role": "user", "content": "hi", "otid": otid or str(uuid.uuid4())}
    stream = httpx.post(
        f"{REPLAY_HOST}/v1/conversations/{created['id']}/messages", json={"messages": [message]}
    ).text
    event = json.loads(stream.split("\n")[0].removeprefix("data: "))
    return {"agent": found, "listed": listed, "created": created, "event": event}


def test_the_cassette_holds_placeholders_only(cassette_path: Path) -> None:
    text = cassette_path.read_text()
    for real in (AGENT, CONV, OTID, MESSAGE):
        assert real.rsplit("-", 1)[-1] not in text


@pytest.mark.parametrize("agent", [AGENT, OTHER_AGENT])
def test_a_replay_takes_the_tests_agent_id_and_hands_it_back(
    cassette_path: Path, agent: str
) -> None:
    otid = str(uuid.uuid4())
    with replaying(cassette_path) as cassette:
        seen = run_app(agent, otid=otid)
        assert cassette.all_played

    assert seen["agent"] == {"id": agent, "name": "app"}
    assert seen["listed"] == []
    assert seen["created"]["agent_id"] == agent
    conv = seen["created"]["id"]
    assert conv.startswith("conv-")
    assert conv != CONV  # a server-minted id: the cassette's placeholder
    assert "-0000-4000-8000-" in conv
    assert seen["event"]["otid"] == otid  # the call's own otid comes back in the stream
    assert seen["event"]["content"] == "Echo: hi"


def test_the_recorded_placeholder_replays_as_it_is(cassette_path: Path) -> None:
    data = letta_serializer.deserialize(cassette_path.read_text())
    placeholder = data["interactions"][0]["request"]["uri"].rsplit("/", 1)[1]
    assert placeholder.startswith("agent-")
    assert placeholder != AGENT

    with replaying(cassette_path) as cassette:
        seen = run_app(placeholder)
        assert cassette.all_played

    assert seen["agent"]["id"] == placeholder
    assert seen["created"]["agent_id"] == placeholder


def test_a_random_session_key_fails_naming_the_session_key(cassette_path: Path) -> None:
    with (
        replaying(cassette_path),
        pytest.raises(CannotOverwriteExistingCassetteException) as raised,
    ):
        run_app(OTHER_AGENT, key="ada-4711")

    message = str(raised.value)
    assert "no recorded response for GET /v1/conversations/" in message
    assert (
        f"query summary_search: recorded '{TAG}ada', sent '{TAG}ada-4711' (a session key" in message
    )
    assert "agent_id" not in message.split("first difference:")[1].split("\n")[0]
    assert "only the host, the ids" in message


def test_two_ids_where_the_recording_had_one_fail_naming_both(cassette_path: Path) -> None:
    with replaying(cassette_path):
        httpx.get(f"{REPLAY_HOST}/v1/agents/{AGENT}")
        with pytest.raises(CannotOverwriteExistingCassetteException) as raised:
            httpx.get(
                f"{REPLAY_HOST}/v1/conversations/",
                params={"agent_id": OTHER_AGENT, "summary_search": TAG + "ada"},
            )

    difference = str(raised.value).split("first difference: ")[1].split("\n")[0]
    assert difference.startswith(f"query agent_id: sent {OTHER_AGENT.removeprefix('agent-')}")
    assert f"which this replay maps to {AGENT.removeprefix('agent-')}" in difference
    assert "the test uses two ids where the recording had one" in difference


def test_one_id_where_the_recording_had_two_fails(tmp_path: Path) -> None:
    traffic = [
        interaction("GET", f"/v1/agents/{AGENT}", None, {"id": AGENT}),
        interaction("GET", f"/v1/agents/{OTHER_AGENT}", None, {"id": OTHER_AGENT}),
    ]
    path = write_cassette(tmp_path, "test_two", traffic)
    mine = "agent-11111111-2222-4333-8444-555555555555"

    with replaying(path):
        assert httpx.get(f"{REPLAY_HOST}/v1/agents/{mine}").json() == {"id": mine}
        with pytest.raises(CannotOverwriteExistingCassetteException) as raised:
            httpx.get(f"{REPLAY_HOST}/v1/agents/{mine}")

    message = str(raised.value)
    assert "it matches recorded request #1, already played" in message
    difference = message.split("first difference: ")[1].split("\n")[0]
    assert difference.startswith("path: sent 11111111-2222-4333-8444-555555555555, which this")
    assert "the test uses one id where the recording had two" in difference


def test_text_where_the_recording_has_an_id_is_named(cassette_path: Path) -> None:
    with (
        replaying(cassette_path),
        pytest.raises(CannotOverwriteExistingCassetteException) as raised,
    ):
        httpx.get(f"{REPLAY_HOST}/v1/agents/my-agent")

    message = str(raised.value)
    assert "closest recorded: GET /v1/agents/agent-" in message
    assert "(an id), sent '/v1/agents/my-agent' (no id)" in message


def test_a_changed_text_is_still_a_plain_difference(cassette_path: Path) -> None:
    with replaying(cassette_path):
        seen = run_app(OTHER_AGENT)
        with pytest.raises(CannotOverwriteExistingCassetteException) as raised:
            httpx.post(
                f"{REPLAY_HOST}/v1/conversations/{seen['created']['id']}/messages",
                json={"messages": [{"role": "user", "content": "bye"}]},
            )

    assert ".messages[0].content: recorded 'hi', sent 'bye'" in str(raised.value)


def test_recording_is_unchanged_by_replay_support(tmp_path: Path) -> None:
    """Recording the same traffic twice writes the same bytes (placeholders in order)."""
    texts = []
    for agent in (AGENT, OTHER_AGENT):
        data = {"interactions": normalize_interactions(app_traffic(agent), "m/t.yaml")}
        texts.append(letta_serializer.serialize(data | {"version": 1}))
    assert texts[0] == texts[1]


def test_a_later_failure_names_the_first_unanswered_request(cassette_path: Path) -> None:
    """Code that catches the first error and tries something else still shows the cause."""
    with replaying(cassette_path):
        with pytest.raises(CannotOverwriteExistingCassetteException):
            httpx.get(f"{REPLAY_HOST}/v1/agents/{AGENT}", params={"include": "agent.blocks"})
        with pytest.raises(CannotOverwriteExistingCassetteException) as raised:
            httpx.get(f"{REPLAY_HOST}/v1/runs/", params={"active": "true"})

    message = str(raised.value)
    assert "no recorded response for GET /v1/runs/?active=true" in message
    assert "earlier in this cassette 1 request(s) found no recorded response" in message
    assert "first difference: query include: sent 'agent.blocks', not recorded" in message


def test_a_session_key_is_no_id_even_with_a_uuid_in_it(tmp_path: Path) -> None:
    key = f"user-{uuid.uuid4()}"
    path = write_cassette(tmp_path, "test_key", app_traffic(key=key))
    assert path.read_text().count(key) == 2  # in the lookup and the create, as it was

    with replaying(path) as cassette:
        run_app(OTHER_AGENT, key=key)
        assert cassette.all_played
    with replaying(path), pytest.raises(CannotOverwriteExistingCassetteException) as raised:
        run_app(OTHER_AGENT, key=f"user-{uuid.uuid4()}")  # a random key per run

    difference = str(raised.value).split("first difference: ")[1].split("\n")[0]
    assert difference.startswith(f"query summary_search: recorded '{TAG}{key}', sent '{TAG}user-")
    assert difference.endswith(
        "(a session key: the test must use the same session keys when "
        "replaying as when recording, not random ones)"
    )
