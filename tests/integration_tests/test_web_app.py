"""Run ``examples/web_app.py`` under uvicorn and drive it over HTTP for two users at once."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
WEB_APP = ROOT / "examples" / "web_app.py"
REPLY = "word1 word2 word3 word4 word5 word6 word7 word8"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(base_url: str, agent_id: str) -> Iterator[str]:
    """The web app on a free local port, as a real uvicorn process."""
    port = free_port()
    command = [sys.executable, str(WEB_APP), "--agent", agent_id, "--base-url", base_url]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the web app did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def chat(client: httpx.AsyncClient, user: str, message: str) -> list[tuple[float, dict]]:
    """POST a message; the server-sent events as (arrival time, event)."""
    events: list[tuple[float, dict]] = []
    kind = "message"
    async with client.stream("POST", f"/chat/{user}", json={"message": message}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((time.monotonic(), {"event": kind, **json.loads(line[6:])}))
                kind = "message"
    return events


async def test_two_users_stream_concurrently_with_isolated_histories(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=120) as client:
        alice, bob = await asyncio.gather(
            chat(client, "alice", "[long:8] [slow:2] I am alice"),
            chat(client, "bob", "[long:8] [slow:2] I am bob"),
        )
        for events in (alice, bob):
            texts = [event["text"] for _, event in events if event["event"] == "message"]
            assert len(texts) > 1, events  # streamed, not one buffered reply
            assert "".join(texts) == REPLY
            assert events[-1][1]["event"] == "done", events
            # Chunks reach the client as they are produced (the LLM spreads them over 2 s).
            assert events[-2][0] - events[0][0] > 0.5, events
        # Both replies were in flight at the same time.
        assert alice[0][0] < bob[-1][0]
        assert bob[0][0] < alice[-1][0]

        # A second turn resumes alice's own thread.
        again = await chat(client, "alice", "and again")
        assert "".join(e["text"] for _, e in again if e["event"] == "message") == "Echo: and again"

        threads = {}
        for user in ("alice", "bob", "carol"):
            response = await client.get(f"/history/{user}")
            assert response.status_code == 200
            threads[user] = response.json()

    alice_thread = [(m["role"], m["text"]) for m in threads["alice"]["messages"]]
    bob_thread = [(m["role"], m["text"]) for m in threads["bob"]["messages"]]
    assert alice_thread == [
        ("human", "[long:8] [slow:2] I am alice"),
        ("ai", REPLY),
        ("human", "and again"),
        ("ai", "Echo: and again"),
    ]
    assert bob_thread == [("human", "[long:8] [slow:2] I am bob"), ("ai", REPLY)]
    assert all(m["id"] for m in threads["alice"]["messages"])
    assert threads["alice"]["conversation_id"] != threads["bob"]["conversation_id"]
    assert threads["carol"] == {"user": "carol", "conversation_id": None, "messages": []}


def test_bad_requests_are_rejected_before_anything_is_sent(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        assert client.post("/chat/alice", json={"message": ""}).status_code == 422
        assert client.post("/chat/not%20a%20user", json={"message": "hi"}).status_code == 422
        assert client.get("/history/not%20a%20user").status_code == 422
        page = client.get("/")
        assert page.status_code == 200
        assert "getReader" in page.text  # the streaming client
