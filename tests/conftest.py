"""Test tiers: unit tests never touch the network; integration tests replay cassettes.

``LETTA_TEST_MODE`` picks how integration tests reach Letta:

* ``replay`` (default): from ``cassettes/``, sockets blocked, no server needed;
* ``live``: against a real server (``LETTA_BASE_URL``, else the local stack, started);
* ``record``: like ``live``, and rewrites the cassettes.

``LETTA_CASSETTE_DIR`` puts the cassettes elsewhere (say, to diff a re-recording).

Tests marked ``live`` always run against the real server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_socket

from langchain_letta.testing import letta_vcr_config, register_letta

ROOT = Path(__file__).resolve().parent.parent
MODE = os.environ.get("LETTA_TEST_MODE", "replay")
REPLAY_BASE_URL = "http://letta-replay.invalid:8283"

if MODE not in {"replay", "live", "record"}:
    raise pytest.UsageError(f"LETTA_TEST_MODE must be replay, live or record, not {MODE!r}")


def pytest_configure(config: pytest.Config) -> None:
    if MODE == "live":
        config.option.disable_recording = True
    elif MODE == "record":
        config.option.record_mode = "rewrite"


def pytest_recording_configure(config: pytest.Config, vcr: object) -> None:
    register_letta(vcr)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, object]:
    return letta_vcr_config()


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    root = Path(os.environ.get("LETTA_CASSETTE_DIR") or ROOT / "cassettes")
    return str(root / request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def vcr_markers(request: pytest.FixtureRequest) -> list[pytest.Mark]:
    """Cassettes for ``vcr``-marked tests; tests marked ``live`` never use one."""
    if request.node.get_closest_marker("live") is not None:
        return []
    return list(request.node.iter_markers(name="vcr"))


def _replaying(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return (
        MODE == "replay"
        and node.get_closest_marker("vcr") is not None
        and (node.get_closest_marker("live") is None)
    )


@pytest.fixture(autouse=True)
def _network_policy(request: pytest.FixtureRequest) -> Iterator[None]:
    """Unit tests and cassette replays run with sockets blocked."""
    is_unit = "unit_tests" in str(request.node.path)
    if is_unit or _replaying(request):
        pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


_stack_started_here = False


def live_base_url() -> str:
    """The real server: ``LETTA_BASE_URL`` or the project's local stack (started if needed)."""
    global _stack_started_here
    if os.environ.get("LETTA_BASE_URL"):
        return os.environ["LETTA_BASE_URL"]
    from scripts import letta_stack

    stack = letta_stack.Stack.from_env()
    if not _stack_started_here and not letta_stack.http_ok(f"{stack.base_url}/v1/health/"):
        _stack_started_here = True
    return letta_stack.ensure_up(stack)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the local stack if this test run started it (``LETTA_STACK_KEEP=1`` keeps it)."""
    if _stack_started_here and not os.environ.get("LETTA_STACK_KEEP"):
        from scripts import letta_stack

        letta_stack.down()


@pytest.fixture
def base_url(request: pytest.FixtureRequest) -> str:
    return REPLAY_BASE_URL if _replaying(request) else live_base_url()


def agent_name(request: pytest.FixtureRequest) -> str:
    return "lc-test-" + re.sub(r"[^a-zA-Z0-9_-]+", "-", request.node.name)[:80]
