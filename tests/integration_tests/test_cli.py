"""Drive ``examples/conversations_cli.py`` in a real terminal (tmux) against the real server."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from letta_client import Letta

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "examples" / "conversations_cli.py"
REPLY = "word1 word2 word3 word4 word5 word6 word7 word8"


class Terminal:
    """A detached tmux session of its own server (socket), running one command."""

    def __init__(self, command: list[str], width: int = 120, height: int = 40) -> None:
        self.socket = f"lc-test-{uuid.uuid4().hex[:10]}"
        # Keep the pane after the app exits, so a crash's traceback stays on screen.
        shell = f"{shlex.join(command)}; echo '[exited '$?']'; sleep 600"
        self.tmux("new-session", "-d", "-s", "app", "-x", str(width), "-y", str(height), shell)

    def tmux(self, *args: str) -> str:
        # The pane's real size must win: a COLUMNS/LINES set around the test would not.
        env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=env
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: the app handles each before the next arrives
            self.tmux("send-keys", "-t", "app", key)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "app", "-l", text)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(base_url: str, agent_id: str) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (`make test` installs it with apt-get)")
    command = [sys.executable, str(CLI), "--agent", agent_id, "--base-url", base_url]
    term = Terminal([*command, "--page-size", "2"])
    try:
        yield term
    finally:
        term.close()


def line_of(screen: str, text: str) -> int:
    return next(i for i, line in enumerate(screen.splitlines()) if text in line)


def test_manage_and_chat_in_a_real_terminal(
    terminal: Terminal, letta: Letta, agent_id: str
) -> None:
    screen = terminal.wait_for("0 conversation(s)", "^n New", "^o Load older", "^g Memory")

    # Create a conversation.
    terminal.keys("C-n")
    terminal.wait_for("Title of the new conversation")
    terminal.type("tmux chat")
    terminal.keys("Enter")
    terminal.wait_for("▶ tmux chat", "start of conversation")

    # Chat: the reply streams in (a partial reply is seen before the whole one).
    terminal.type("[long:8] [slow:3] hello")
    terminal.keys("Enter")
    partial_seen = False
    deadline = time.monotonic() + 90
    while REPLY not in (screen := terminal.screen()):
        partial_seen = partial_seen or "Agent: word1" in screen
        assert time.monotonic() < deadline, f"no full reply:\n{screen}"
        time.sleep(0.05)
    assert partial_seen, "the reply appeared all at once, not streamed"
    terminal.wait_for("Ready.")
    terminal.type("second turn")
    terminal.keys("Enter")
    terminal.wait_for("Agent: Echo: second turn", "Ready.")

    # The server holds the conversation and both turns.
    (conversation,) = letta.conversations.list(agent_id=agent_id)
    assert conversation.summary == "tmux chat"
    stored = [
        (m.message_type, getattr(m, "content", None))
        for m in letta.conversations.messages.list(conversation.id, order="asc")
    ]
    assert ("user_message", "[long:8] [slow:3] hello") in stored
    assert ("assistant_message", REPLY) in stored
    assert ("user_message", "second turn") in stored

    # A second conversation, then switch back: only the newest page (2 messages) shows.
    terminal.keys("C-n")
    terminal.wait_for("Title of the new conversation")
    terminal.type("other")
    terminal.keys("Enter")
    terminal.wait_for("▶ other", "start of conversation")
    terminal.keys("C-l", "Down", "Enter")
    screen = terminal.wait_for("▶ tmux chat", "Agent: Echo: second turn", "ctrl+o loads older")
    assert "You: second turn" in screen
    assert "[long:8]" not in screen
    assert REPLY not in screen

    # Page back: the older turn appears above the newer one, then the start is reached.
    terminal.keys("C-o")
    screen = terminal.wait_for("You: [long:8] [slow:3] hello", REPLY)
    assert line_of(screen, "[long:8]") < line_of(screen, REPLY) < line_of(screen, "second turn")
    terminal.keys("C-o")
    terminal.wait_for("start of conversation")

    # Memory blocks, shared by all conversations.
    terminal.keys("C-g")
    terminal.wait_for("Memory blocks", "human: Name: Ada", "persona: A concise assistant.")
    terminal.keys("C-g")

    # Rename (the conversation's summary on the server).
    terminal.keys("C-r")
    terminal.wait_for("New title:")
    terminal.keys("C-u")
    terminal.type("renamed chat")
    terminal.keys("Enter")
    terminal.wait_for("▶ renamed chat")
    assert letta.conversations.retrieve(conversation.id).summary == "renamed chat"

    # Delete it; the other conversation opens.
    terminal.keys("C-t")
    terminal.wait_for("Delete 'renamed chat'?")
    terminal.keys("y")
    deadline = time.monotonic() + 60
    while "renamed chat" in (screen := terminal.wait_for("▶ other")):
        assert time.monotonic() < deadline, f"still listed:\n{screen}"
        time.sleep(0.1)
    remaining = [c.summary for c in letta.conversations.list(agent_id=agent_id)]
    assert remaining == ["other"]

    terminal.keys("C-q")
    terminal.wait_for("[exited 0]")
