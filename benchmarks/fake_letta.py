#!/usr/bin/env python3
"""A loopback fake of the few Letta endpoints one session's turns use, for scale runs.

    python benchmarks/fake_letta.py          # prints its URL on the first line, serves

It answers, from memory and in the shapes the real server recorded (the agent and the
system message of ``cassettes/test_chat_models/test_invoke_fills_id_usage_and_metadata``):

* ``GET /v1/agents/{id}``: the recorded agent (any id);
* ``GET /v1/conversations/`` with ``summary_search``: the conversations whose summary holds
  the search text (an index on the session tag's digest, so 100,000 sessions stay fast);
* ``POST /v1/conversations/``, ``GET /v1/conversations/{id}``;
* ``GET /v1/conversations/{id}/messages`` and ``GET /v1/messages/?conversation_id=``: the
  system message, then each stored turn;
* ``POST /v1/conversations/{id}/messages``: an SSE turn that echoes the last user message;
* ``GET /v1/runs/...``: a send's run, ended, with its items and usage (no run is ever
  active: a turn is answered whole); asked only after a send's stream broke.

Anything else answers 404 and is logged to stderr. HTTP/1.1 with keep-alive, one asyncio
loop; it runs in its own process so that the benchmark's process measures only the client.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

CASSETTE = (
    Path(__file__).resolve().parent.parent
    / "cassettes/test_chat_models/test_invoke_fills_id_usage_and_metadata.yaml"
)
DIGEST = re.compile(r"[0-9a-f]{32}")
NOW = "2026-12-02T00:00:00Z"


def _templates() -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded agent and the recorded system message."""
    recorded = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))["interactions"]
    agent = next(
        i["response"]["json"]
        for i in recorded
        if i["request"]["method"] == "GET" and "/v1/agents/" in i["request"]["uri"]
    )
    system = next(
        i["response"]["json"][0]
        for i in recorded
        if i["request"]["uri"].endswith("/messages?limit=1&order=asc")
    )
    return agent, system


class FakeLetta:
    """The server's state: conversations, their turns, and the digest index."""

    def __init__(self) -> None:
        self.agent, self.system = _templates()
        self.conversations: dict[str, dict[str, Any]] = {}
        self.turns: dict[str, list[dict[str, Any]]] = {}
        self.by_digest: dict[str, list[str]] = {}
        self.runs: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def route(self, method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        segments = path.split("/")[2:]  # after "/v1"
        if method == "GET" and segments[:1] == ["agents"] and len(segments) == 2:
            return self._json({**self.agent, "id": segments[1]})
        if method == "GET" and segments[:1] == ["runs"]:
            return self._json(self._run(segments[1:], query))
        if method == "GET" and segments == ["messages"]:  # the listing by conversation_id
            found = self.conversations.get(query.get("conversation_id", ""))
            if found is None:
                return 404, "application/json", b'{"detail": "Conversation not found"}'
            return self._json(self._messages(found["id"], query))
        if segments[:1] != ["conversations"]:
            return self._missing(method, target)
        if len(segments) == 1 and method == "GET":
            return self._json(self._search(query.get("summary_search", ""), query))
        if len(segments) == 1 and method == "POST":
            return self._json(self._create(query.get("agent_id", ""), json.loads(body or b"{}")))
        conversation = self.conversations.get(segments[1])
        if conversation is None:
            return 404, "application/json", b'{"detail": "Conversation not found"}'
        if len(segments) == 2 and method == "GET":
            return self._json(conversation)
        if segments[2:] == ["messages"] and method == "GET":
            return self._json(self._messages(conversation["id"], query))
        if segments[2:] == ["messages"] and method == "POST":
            return self._send(conversation["id"], json.loads(body))
        return self._missing(method, target)

    def _search(self, text: str, query: dict[str, str]) -> list[dict[str, Any]]:
        found = DIGEST.search(text)
        ids = self.by_digest.get(found.group(0), []) if found else []
        agent_id = query.get("agent_id")
        hits = [self.conversations[i] for i in ids]
        return [c for c in hits if text in c["summary"] and agent_id in (None, c["agent_id"])]

    def _create(self, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        conversation_id = f"conv-{uuid.uuid4()}"
        summary = str(body.get("summary") or "")
        conversation: dict[str, Any] = {
            "id": conversation_id,
            "agent_id": agent_id,
            "summary": summary,
            "created_at": NOW,
            "updated_at": NOW,
            "in_context_message_ids": [],
            "isolated_block_ids": [],
            "model": None,
            "model_settings": None,
            "last_message_at": None,
        }
        self.conversations[conversation_id] = conversation
        self.turns[conversation_id] = []
        if found := DIGEST.search(summary):
            self.by_digest.setdefault(found.group(0), []).append(conversation_id)
        return conversation

    def _messages(self, conversation_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
        system = {**self.system, "id": f"message-{uuid.UUID(conversation_id[5:])}"}
        items = [system, *self.turns[conversation_id]]
        if query.get("order", "desc") == "desc":
            items.reverse()
        ids = [item["id"] for item in items]
        if (after := query.get("after")) in ids:
            items = items[ids.index(after) + 1 :]
        if (before := query.get("before")) in ids:
            items = items[: ids.index(before)]
        return items[: int(query.get("limit", "100"))]

    def _run(self, segments: list[str], query: dict[str, str]) -> Any:
        """The runs of a failed send's recovery: none active, each ended, its items, usage."""
        if not segments:
            return []
        run_id, what = segments[0], segments[1:]
        conversation_id, items = self.runs.get(run_id, (None, []))
        if what == ["messages"]:
            return items
        if what == ["usage"]:
            return {"completion_tokens": 2, "prompt_tokens": 600, "total_tokens": 602}
        return {
            "id": run_id,
            "agent_id": self.agent["id"],
            "conversation_id": conversation_id,
            "status": "completed",
            "stop_reason": "end_turn",
        }

    def _send(self, conversation_id: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
        messages = body.get("messages") or []
        if not messages:
            return 422, "application/json", b'{"detail": "messages must not be empty"}'
        run_id = f"run-{uuid.uuid4()}"
        stored = self.turns[conversation_id]
        for message in messages:
            stored.append(
                {
                    "id": f"message-{uuid.uuid4()}",
                    "date": NOW,
                    "message_type": f"{message.get('role', 'user')}_message",
                    "otid": message.get("otid"),
                    "run_id": run_id,
                    "content": message.get("content"),
                }
            )
        text = messages[-1].get("content")
        reply = {
            "id": f"message-{uuid.uuid4()}",
            "date": NOW,
            "message_type": "assistant_message",
            "otid": str(uuid.uuid4()),
            "run_id": run_id,
            "content": f"Echo: {text if isinstance(text, str) else '...'}",
        }
        stored.append(reply)
        self.runs[run_id] = (conversation_id, [item for item in stored if item["run_id"] == run_id])
        events = [
            {"id": f"ping-{uuid.uuid4()}", "message_type": "ping", "run_id": run_id},
            reply,
            {"message_type": "stop_reason", "stop_reason": "end_turn"},
            {
                "message_type": "usage_statistics",
                "completion_tokens": 2,
                "prompt_tokens": 600,
                "total_tokens": 602,
                "step_count": 1,
            },
        ]
        sse = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        return 200, "text/event-stream; charset=utf-8", sse.encode()

    @staticmethod
    def _json(value: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(value).encode()

    @staticmethod
    def _missing(method: str, target: str) -> tuple[int, str, bytes]:
        print(f"fake letta: no route for {method} {target}", file=sys.stderr, flush=True)
        return 404, "application/json", b'{"detail": "Not Found"}'


async def _serve_connection(
    fake: FakeLetta, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while request_line := await reader.readline():
            method, target, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, kind, payload = fake.route(method, target, body)
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\n"
                f"content-length: {len(payload)}\r\n\r\n".encode("latin-1")
                + payload
            )
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _main() -> None:
    fake = FakeLetta()
    server = await asyncio.start_server(lambda r, w: _serve_connection(fake, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main())
