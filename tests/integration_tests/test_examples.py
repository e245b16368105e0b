"""The example scripts run end to end against the real server and pass their own checks."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import uuid

import pytest

from tests.conftest import ROOT, live_base_url

pytestmark = pytest.mark.live


def run_script(name: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` with ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_example(name: str) -> str:
    """Run ``examples/<name>`` against the live server; return its output (exit 0 asserted)."""
    done = run_script(name, LETTA_BASE_URL=live_base_url())
    output = done.stdout
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{output}\n{done.stderr}"
    assert "[FAIL]" not in output
    return output


def test_demo() -> None:
    output = run_example("demo.py")

    for line in (
        "[ok] alice and bob have different threads",
        "[ok] alice: each of this run's messages is stored exactly once",
        "[ok] bob: none of alice's messages in the thread",
        "[ok] the agent wrote to its human block from alice's session",
        "[ok] alice: the reply quotes the new memory value",
        "[ok] bob: the reply quotes the new memory value",
        "[ok] alice: resumed thread conv-",
        "[ok] bob: resumed thread conv-",
        "[ok] the new process resumed both threads",
        "none skipped or repeated",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"
    assert "Alice and Bob like tea (run" in output


def test_conversations_demo() -> None:
    output = run_example("conversations_demo.py")

    for line in (
        "[ok] two conversations",
        "[ok] the reply arrived token by token",
        "[ok] the `before` cursor continues exactly where the first page ended",
        "[ok] a turn on the fork leaves the original untouched",
        "[ok] the recompiled system prompt holds the new value",
        "[ok] fewer messages in context",
        "[ok] the turn was cancelled",
        "[ok] ChatLetta raises LettaNotFoundError",
        "Tour complete: all checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_langgraph_example() -> None:
    output = run_example("langgraph_example.py")

    for line in (
        "[ok] each thread_id has its own conversation",
        "[ok] alice: nothing of Bob's thread",
        "[ok] the reply streamed out of the graph in pieces",
        "[ok] the same Letta conversation continues",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_an_unknown_model_ends_with_one_line_naming_the_offered_handles() -> None:
    done = run_script(
        "langgraph_example.py",
        LETTA_BASE_URL=live_base_url(),
        LETTA_DEMO_AGENT=f"lc-test-no-such-model-{uuid.uuid4().hex[:8]}",
        LETTA_DEMO_MODEL="openai-proxy/no-such-model",
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "openai-proxy/no-such-model" in lines[0]
    assert "set LETTA_DEMO_MODEL to one of: " in lines[0]
    assert "openai-proxy/fake-llm" in lines[0]


def test_an_unreachable_server_ends_with_one_line() -> None:
    done = run_script("demo.py", LETTA_BASE_URL="http://127.0.0.1:9", LETTA_DEMO_MODEL="")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "Cannot use the Letta server at http://127.0.0.1:9: Connection error."
    ]


@pytest.mark.parametrize(
    "base_url",
    ["http://user:s3cret-pw@127.0.0.1:9", "http://127.0.0.1:9/?api_key=s3cret-key"],
    ids=["user-and-password", "api-key-query"],
)
def test_credentials_in_the_url_never_reach_the_output(base_url: str) -> None:
    done = run_script("demo.py", LETTA_BASE_URL=base_url, LETTA_DEMO_MODEL="")

    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "Cannot use the Letta server at http://127.0.0.1:9: Connection error."
    ]


def test_a_url_that_is_not_http_ends_with_one_line() -> None:
    done = run_script("demo.py", LETTA_BASE_URL="ftp://user:s3cret@127.0.0.1:9")

    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("LETTA_BASE_URL: base_url must be an http:// or https:// URL")


class _NotLetta(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a web page, as a server that is not Letta might."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_is_not_letta_ends_with_one_line() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotLetta)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://user:s3cret@127.0.0.1:{server.server_port}"
        done = run_script("demo.py", LETTA_BASE_URL=url, LETTA_DEMO_MODEL="")
    finally:
        server.shutdown()
        server.server_close()

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f"The server at http://127.0.0.1:{server.server_port} does not answer as a Letta server"
    )


def test_an_api_key_inside_the_url_reaches_the_server_as_the_package_sends_it() -> None:
    name = f"lc-test-url-key-{uuid.uuid4().hex[:8]}"
    script = (
        "from example_setup import DEMO_MEMORY, letta_for, named_agent\n"
        f"letta = letta_for({live_base_url() + '/?api_key=s3cret-key'!r}, None)\n"
        "assert letta.api_key == 's3cret-key', 'the key was not split off the URL'\n"
        f"print(named_agent(letta, {name!r}, memory_blocks=DEMO_MEMORY).id)\n"
    )
    from letta_client import Letta

    letta = Letta(base_url=live_base_url())
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT / "examples",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert [a.id for a in letta.agents.list(name=name)] == [done.stdout.split()[-1]]
    finally:
        for created in letta.agents.list(name=name):
            letta.agents.delete(created.id)


def test_with_no_model_named_the_examples_pick_one_the_server_offers() -> None:
    from letta_client import Letta

    name = f"lc-test-picked-{uuid.uuid4().hex[:8]}"
    script = (
        "from letta_client import Letta\n"
        "from example_setup import DEMO_MEMORY, named_agent\n"
        f"named_agent(Letta(), {name!r}, memory_blocks=DEMO_MEMORY)\n"
    )
    env = {**os.environ, "LETTA_BASE_URL": live_base_url()}
    env |= {"LETTA_DEMO_MODEL": "", "LETTA_DEMO_EMBEDDING": ""}
    letta = Letta(base_url=live_base_url())
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=ROOT / "examples",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        (agent,) = letta.agents.list(name=name)
    finally:
        for created in letta.agents.list(name=name):
            letta.agents.delete(created.id)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Using chat model openai-proxy/fake-llm (set LETTA_DEMO_MODEL to choose" in done.stdout
    assert "Using embedding openai/text-embedding-3-small (set LETTA_DEMO_EMBEDDING" in done.stdout
    assert f"Created agent {name!r} ({agent.id}) on model openai-proxy/fake-llm" in done.stdout


def test_langgraph_agent_example() -> None:
    output = run_example("langgraph_agent.py")

    for line in (
        "[ok] get_weather ran in this process",
        "[ok] a WeatherReport came back",
        "[ok] a plain turn works right after",
        "[ok] the interrupt names the tool",
        "[ok] the agent heard the denial and its reason",
        "[ok] the denied tool did not run",
        "[ok] the new turn went to a branch of the conversation",
        "[ok] the original kept its turns",
        "[ok] the branch holds step 1 and the new turn only",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"


def test_sqlite_session_store_example() -> None:
    output = run_example("sqlite_session_store.py")

    for line in (
        "[ok] SQLite maps alice's session",
        "[ok] the history finds it through SQLite",
        "[ok] a racing second mapping loses to the first",
        "All checks passed.",
    ):
        assert line in output, f"missing {line!r} in:\n{output}"
