"""A user's own tests replay offline, under vcrpy 8 and vcrpy 9.

``examples/user_project`` is a project of its own (its ``pytest.ini``, ``conftest.py``,
app and tests; the agent id from ``APP_AGENT``), recorded once against the local stack.
Each case runs it as a separate pytest process with the network blocked and
``LETTA_BASE_URL`` on a host that does not resolve: with the agent id the recording used,
and with another environment's agent id and an API key.

vcrpy 8 is this venv's (langchain-tests pins it). vcrpy 9 comes from ``.venv-vcr9/``:
vcrpy 9 alone, installed with ``pip --target`` and put first on ``PYTHONPATH``, everything
else from this venv; it is built once and kept while its key (the vcrpy spec and the
Python version) is the same.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "examples" / "user_project"
VCRPY9 = "vcrpy==9.4.2"
OVERLAY = ROOT / ".venv-vcr9"
UNRESOLVABLE = "http://letta-ci.invalid:8283"


def vcrpy9_site() -> Path:
    """A directory holding vcrpy 9 only, installed on first use and then reused."""
    key = hashlib.sha256(f"{VCRPY9}\n{sys.version}".encode()).hexdigest()[:16]
    site, stamp = OVERLAY / "site", OVERLAY / "key"
    if stamp.is_file() and stamp.read_text() == key and site.is_dir():
        return site
    shutil.rmtree(OVERLAY, ignore_errors=True)
    building = OVERLAY.with_name(f"{OVERLAY.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--disable-pip-version-check", "--target", str(building / "site"), VCRPY9),
        ],
        check=True,
        timeout=300,
    )
    (building / "key").write_text(key)
    building.rename(OVERLAY)
    return site


_UNBUILT: list[str] = []


def vcrpy9_or_skip() -> Path:
    """:func:`vcrpy9_site`, or a skip when it is not built and pip cannot fetch vcrpy 9.

    With no network (the offline tier in an empty network namespace) the overlay cannot be
    built; ``make test`` builds it before its offline run, so there these tests always run.
    """
    if _UNBUILT:
        pytest.skip(_UNBUILT[0])
    try:
        return vcrpy9_site()
    except subprocess.CalledProcessError:
        _UNBUILT.append(
            f"{OVERLAY.name}/ holds no {VCRPY9} and pip could not fetch it (no network?): "
            "build it first with `make test`, or run "
            '`.venv/bin/python -c "from tests.test_user_project import vcrpy9_site; vcrpy9_site()"`'
        )
        pytest.skip(_UNBUILT[0])


def environment(vcrpy: str, **variables: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LETTA_", "APP_", "PYTEST_")) and key != "PYTHONPATH"
    }
    if vcrpy == "9":
        env["PYTHONPATH"] = str(vcrpy9_or_skip())
    return env | variables


def run_pytest(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def recorded_ids() -> dict[str, str]:
    """``APP_AGENT`` and ``APP_CONVERSATION`` as the recording had them."""
    lines = (PROJECT / "recorded_with.env").read_text().split()
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("vcrpy", ["8", "9"])
def test_vcrpy_line_in_use(vcrpy: str) -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import vcr; print(vcr.__version__)"],
        env=environment(vcrpy),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found.split(".")[0] == vcrpy


@pytest.mark.parametrize("vcrpy", ["8", "9"])
@pytest.mark.parametrize("ids", ["recorded-ids", "other-ids"])
def test_user_project_replays_offline(vcrpy: str, ids: str) -> None:
    variables = recorded_ids() | {"LETTA_BASE_URL": UNRESOLVABLE}
    if ids == "other-ids":
        variables |= {
            "APP_AGENT": f"agent-{uuid.uuid4()}",
            "APP_CONVERSATION": f"conv-{uuid.uuid4()}",
            "LETTA_API_KEY": "sk-ci-0123456789abcdef",
        }
    assert variables["APP_AGENT"].startswith("agent-")
    assert variables["APP_CONVERSATION"].startswith("conv-")

    result = run_pytest(PROJECT, environment(vcrpy, **variables), "--block-network")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 passed" in result.stdout, result.stdout


def test_repo_cassette_tests_replay_with_vcrpy9() -> None:
    result = run_pytest(
        ROOT,
        environment("9"),
        "examples/test_recorded_chain.py",
        "tests/unit_tests/test_testing.py",
        "tests/unit_tests/test_testing_replay.py",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout, result.stdout
    assert "failed" not in result.stdout, result.stdout
