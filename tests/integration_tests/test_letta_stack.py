"""The local stack's first run, cut short or meeting a port in use, as a new user meets it.

Each test builds a stack of its own (a temporary ``LETTA_STACK_HOME``, free ports) with the
real installers and PostgreSQL binaries, and leaves the suite's stack alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts import letta_stack
from tests.conftest import ROOT

pytestmark = pytest.mark.live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(home: Path, **ports: int) -> dict[str, str]:
    """This environment without Letta settings, on a stack in ``home`` with free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTA_")}
    names = ("LETTA_STACK_PORT", "LETTA_STACK_PG_PORT", "LETTA_STACK_REDIS_PORT")
    for name in (*names, "LETTA_STACK_LLM_PORT"):
        env[name] = str(ports.get(name, free_port()))
    return env | {"LETTA_STACK_HOME": str(home)}


class Healthy(BaseHTTPRequestHandler):
    """Another program on the port, answering 200 to everything (``/v1/health/`` too)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def taken_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_port_in_use_is_one_line_from_up_and_from_make_demo(
    taken_port: int, tmp_path: Path
) -> None:
    env = stack_env(tmp_path / "home", LETTA_STACK_PORT=taken_port)
    said = (
        f"port {taken_port} for letta is already used by another program; "
        "set LETTA_STACK_PORT to a free port"
    )

    up = subprocess.run(
        [sys.executable, "scripts/letta_stack.py", "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (up.returncode, up.stdout, up.stderr) == (1, "", f"[letta-stack] error: {said}\n")
    assert not list((tmp_path / "home").glob("run/*.pid")), "started something anyway"

    demo = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 1
    assert demo.stderr == f"The local Letta stack did not start: {said}\n"


def test_a_venv_an_interrupted_install_left_is_built_anew(tmp_path: Path) -> None:
    """Ctrl-C 1.3 s into the install left opentelemetry-exporter-otlp-proto-common's
    metadata and not its modules; every later ``up`` then took it as installed, and the
    server died at start (ModuleNotFoundError) on every try."""
    stack = letta_stack.Stack(home=tmp_path / "home", port=1, pg_port=2, redis_port=3, llm_port=4)
    try:
        letta_stack.ensure_installed(stack)  # uv links from its cache: seconds
        module = "opentelemetry.exporter.otlp.proto.common.trace_encoder"
        shutil.rmtree(stack.site_packages() / "opentelemetry/exporter/otlp/proto/common")
        letta_stack.install_marker(stack).unlink()

        letta_stack.ensure_installed(stack)

        python = stack.venv / "bin" / "python"
        imported = subprocess.run(
            [str(python), "-c", f"import {module}"], capture_output=True, text=True, timeout=120
        )
        assert imported.returncode == 0, imported.stderr
    finally:
        shutil.rmtree(stack.home, ignore_errors=True)


def interrupt_when(
    argv: list[str], env: dict[str, str], ready: Callable[[str], object], delay: float
) -> str:
    """Run ``argv`` in a group of its own; Ctrl-C it ``delay`` s after ``ready()`` is true.

    ``ready`` gets the stderr read so far. Returns that stderr.
    """
    log = Path(env["LETTA_STACK_HOME"]) / "interrupted.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stderr=out, stdout=out, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while not ready(log.read_text()):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    return log.read_text()


def test_database_setup_interrupted_at_initdb_then_at_the_schema_load(tmp_path: Path) -> None:
    """Ctrl-C during initdb left a data folder with PG_VERSION and no ``postgres``
    database; during the load of the cached schema, half a schema. Both failed every
    later ``up`` until a ``reset``."""
    live = letta_stack.Stack.from_env()
    letta_stack.ensure_installed(live)
    home = tmp_path / "home"
    home.mkdir()
    (home / "venv").symlink_to(live.venv)  # its PostgreSQL binaries
    env = stack_env(home)
    stack = letta_stack.Stack(
        home=home.resolve(),
        port=int(env["LETTA_STACK_PORT"]),
        pg_port=int(env["LETTA_STACK_PG_PORT"]),
        redis_port=int(env["LETTA_STACK_REDIS_PORT"]),
        llm_port=int(env["LETTA_STACK_LLM_PORT"]),
    )
    start = [
        sys.executable,
        "-c",
        "from scripts import letta_stack as s; s.start_postgres(s.Stack.from_env())",
    ]
    try:
        interrupt_when(start, env, lambda _: list(stack.pg_root.glob("*/PG_VERSION")), 0.0)

        said = interrupt_when(
            start,
            env,
            lambda log: "loading the migrated schema" in log or "alembic migrations" in log,
            0.15,
        )
        assert "migrated in" not in said, "the migration ended before it was interrupted"

        letta_stack.start_postgres(stack)

        assert (stack.pg_root / f"migrated-{letta_stack.LETTA_VERSION}").exists()
        version = letta_stack.pg_tool(stack, "psql", "-tAc", "select count(*) from alembic_version")
        assert version.stdout.strip() == "1"
        agents = letta_stack.pg_tool(stack, "psql", "-tAc", "select count(*) from agents")
        assert agents.stdout.strip() == "0"
    finally:
        letta_stack.stop(stack, "postgres")
        shutil.rmtree(stack.pg_root, ignore_errors=True)
