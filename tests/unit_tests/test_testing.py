"""langchain_letta.testing: id normalization, scrubbing, serializer, matcher, stale errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request
from vcr.serialize import deserialize

from langchain_letta.testing import (
    IdNormalizer,
    LettaPersister,
    json_body_matcher,
    letta_serializer,
    letta_vcr_config,
    normalize_interactions,
    register_letta,
    scan_for_secrets,
)

AGENT = "agent-a1a6ebd7-16f3-4612-a5ec-bdfc6ed56041"
CONV = "conv-d51fcdc0-71a1-42ba-8491-5e81ff3667e4"
OTID = "0f6a3c52-1f0b-5a55-9d6e-4d7c0b0e2f11"
MESSAGE = "message-ca54f8e4-2fa0-4585-bdcf-74ab15b17c45"


def interaction(method: str, uri: str, body: Any, response: Any, **headers: str) -> Any:
    text = response if isinstance(response, str) else json.dumps(response)
    return {
        "request": {
            "method": method,
            "uri": uri,
            "body": None if body is None else json.dumps(body),
            "headers": {"Authorization": ["Bearer sk-let-abcdefghijklmnopqrstuvwxyz"]}
            | {k: [v] for k, v in headers.items()},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {
                "content-type": ["application/json"],
                "set-cookie": ["s=1"],
                "date": ["today"],
            },
            "body": {"string": text},
        },
    }


def recording() -> list[Any]:
    return [
        interaction("POST", "http://127.0.0.1:8283/v1/agents/", {"name": "a"}, {"id": AGENT}),
        interaction(
            "POST",
            f"http://127.0.0.1:8283/v1/conversations/?agent_id={AGENT}",
            {},
            {"id": CONV, "agent_id": AGENT},
        ),
        interaction(
            "POST",
            f"http://127.0.0.1:8283/v1/conversations/{CONV}/messages",
            {"messages": [{"role": "user", "content": "hi", "otid": OTID}]},
            f'data: {{"id":"{MESSAGE}","otid":"{OTID}","message_type":"assistant_message"}}\n\n'
            "data: [DONE]\n\n",
            **{"content-type": "application/json"},
        ),
    ]


def test_ids_become_stable_placeholders_consistent_within_a_cassette() -> None:
    first = normalize_interactions(recording(), "mod/test_a.yaml")
    again = normalize_interactions(recording(), "mod/test_a.yaml")
    text = json.dumps(first)

    assert first == again
    for real in (AGENT, CONV, OTID, MESSAGE):
        assert real.rsplit("-", 5)[-1] not in text
    agent = json.loads(first[0]["response"]["body"]["string"])["id"]
    assert agent.startswith("agent-")
    assert "-0000-4000-8000-" in agent
    assert first[1]["request"]["uri"].endswith(f"agent_id={agent}")
    conv = json.loads(first[1]["response"]["body"]["string"])["id"]
    assert f"/conversations/{conv}/messages" in first[2]["request"]["uri"]
    assert first[2]["response"]["body"]["string"].startswith("data: {")  # SSE stays text


def test_placeholders_are_unique_per_cassette_and_left_alone() -> None:
    a = IdNormalizer("mod/test_a.yaml")
    b = IdNormalizer("mod/test_b.yaml")
    assert a.text(AGENT) != b.text(AGENT)
    placeholder = a.text(AGENT)
    assert a.text(placeholder) == placeholder
    assert b.text(placeholder) == placeholder
    fixed = "user-00000000-0000-4000-8000-000000000000"
    assert a.text(fixed) == fixed


def test_tool_call_ids_are_normalized_too() -> None:
    normalizer = IdNormalizer("mod/test_a.yaml")
    text = normalizer.text(
        '{"tool_call_id":"call_64ed95c4e31a0123456789ab"} call_64ed95c4e31a0123456789ab'
    )
    placeholder = text.split('"')[3]
    assert placeholder.startswith("call_")
    assert "64ed95c4e31a" not in text
    assert text.count(placeholder) == 2
    assert normalizer.text(text) == text


def test_secrets_and_noisy_headers_never_reach_a_cassette() -> None:
    records = recording()
    records[0]["request"]["body"] = json.dumps({"name": "a", "api_key": "abcdefghijklmnop"})
    records[0]["response"]["body"]["string"] = json.dumps(
        {"id": AGENT, "note": "Bearer abcdefghijkl0123", "key": "sk-proj-0123456789abcdefghij"}
    )
    records[1]["request"]["uri"] += "&api_key=supersecret123"
    normalized = normalize_interactions(records, "mod/test_a.yaml")
    for item in normalized:
        assert set(item["request"]["headers"]) <= {"content-type"}
        assert set(item["response"]["headers"]) == {"content-type"}
    text = json.dumps(normalized)
    for secret in ("abcdefghijklmnop", "abcdefghijkl0123", "sk-proj-0", "supersecret123", "sk-let"):
        assert secret not in text


def test_agent_state_loses_bulky_static_fields_only() -> None:
    state = {
        "id": AGENT,
        "agent_type": "letta_v1_agent",
        "llm_config": {"context_window": 30000},
        "tools": [{"id": "tool-1", "name": "send", "description": "x" * 500, "json_schema": {}}],
        "compaction_settings": {"model": "m", "prompt": "p" * 500},
    }
    records = [interaction("GET", f"http://h/v1/agents/{AGENT}", None, state)]
    body = json.loads(normalize_interactions(records, "m/t.yaml")[0]["response"]["body"]["string"])
    assert body["tools"] == [{"id": "tool-1", "name": "send"}]
    assert body["compaction_settings"] == {"model": "m"}
    assert body["llm_config"] == {"context_window": 30000}


def test_serializer_round_trips_and_aliases_repeated_long_strings() -> None:
    prompt = "<base_instructions>\n" + "You are helpful.\n" * 40
    records = normalize_interactions(recording(), "mod/test_a.yaml")
    records[0]["response"]["body"]["string"] = json.dumps({"id": "x", "system": prompt})
    records[1]["response"]["body"]["string"] = json.dumps([{"content": prompt}])
    data = {"interactions": records, "version": 1}

    text = letta_serializer.serialize(data)
    loaded = letta_serializer.deserialize(text)

    assert text.count("You are helpful.") == 40  # once, then a YAML alias
    assert "&id001" in text
    assert "*id001" in text
    for old, new in zip(records, loaded["interactions"], strict=True):
        assert json.loads(new["request"]["body"] or "null") == json.loads(
            old["request"]["body"] or "null"
        )
        old_body, new_body = old["response"]["body"]["string"], new["response"]["body"]["string"]
        if old_body.startswith("data:"):
            assert new_body == old_body
        else:
            assert json.loads(new_body) == json.loads(old_body)


def request(body: Any, uri: str = "http://a.example/v1/conversations/c/messages") -> Request:
    return Request("POST", uri, json.dumps(body), {})


def test_matcher_ignores_otid_and_formatting_but_nothing_else() -> None:
    recorded = request({"messages": [{"content": "hi", "otid": "one"}], "streaming": True})
    same = request({"streaming": True, "messages": [{"content": "hi", "otid": "two"}]})
    json_body_matcher(same, recorded)  # vcrpy passes (request being made, recorded one)
    json_body_matcher(request({"messages": [{"content": "hi"}], "streaming": True}), recorded)
    changed = request({"messages": [{"content": "yo"}], "streaming": True})
    with pytest.raises(AssertionError, match=r"\.messages\[0\]\.content: recorded 'hi', sent 'yo'"):
        json_body_matcher(changed, recorded)


def test_a_stale_cassette_names_the_request_and_the_difference(tmp_path: Path) -> None:
    recorder = vcr.VCR(record_mode="none")
    register_letta(recorder)
    assert isinstance(recorder.persister, LettaPersister)
    path = tmp_path / "mod" / "test_stale.yaml"

    text = letta_serializer.serialize(
        {"interactions": normalize_interactions(recording(), "mod/test_stale.yaml"), "version": 1}
    )
    path.parent.mkdir()
    path.write_text(text)
    requests, _ = deserialize(text, letta_serializer)
    conv_uri = requests[2].uri.replace("127.0.0.1:8283", "replay.invalid")

    with (
        recorder.use_cassette(str(path), **letta_vcr_config()),
        pytest.raises(CannotOverwriteExistingCassetteException) as raised,
    ):
        httpx.post(conv_uri, json={"messages": [{"role": "user", "content": "changed"}]})
    message = str(raised.value)
    assert "Stale cassette" in message
    assert "POST /v1/conversations/" in message
    assert "closest recorded: POST /v1/conversations/" in message
    assert ".messages[0].content: recorded 'hi', sent 'changed'" in message


def test_scan_finds_nothing_in_a_normalized_recording(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    data = {"interactions": normalize_interactions(recording(), "m/c.yaml"), "version": 1}
    path.write_text(letta_serializer.serialize(data))
    assert scan_for_secrets([tmp_path]) == []
