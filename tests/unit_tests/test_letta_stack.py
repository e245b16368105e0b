"""``scripts/letta_stack.py`` interrupted: a step cut short is done again by the next ``up``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import letta_stack
from tests.conftest import ROOT


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[letta_stack.Stack]:
    """A stack whose venv holds a fake pgserver wheel: its binaries, libraries and headers."""
    home = tmp_path / "home"
    site = home / "venv" / "lib" / "python3.11" / "site-packages"
    for name in ("share/postgresql.bki", "lib/plpgsql.so", "bin/postgres", "include/pg.h"):
        (site / "pgserver" / "pginstall" / name).parent.mkdir(parents=True, exist_ok=True)
        (site / "pgserver" / "pginstall" / name).write_text(name)
    (site / "pgserver.libs").mkdir()
    (site / "pgserver.libs" / "libpq.so.5").write_text("libpq")
    made = letta_stack.Stack(home=home, port=1, pg_port=2, redis_port=3, llm_port=4)
    yield made
    shutil.rmtree(made.pg_root, ignore_errors=True)


def test_binaries_copied_halfway_are_copied_again(
    stack: letta_stack.Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    copytree = shutil.copytree

    def cut_short(source: Path, *args: Any, **kwargs: Any) -> object:
        if Path(source).name == "pgserver.libs":  # bin/postgres is copied, its libraries not
            raise KeyboardInterrupt
        return copytree(source, *args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", cut_short)
    with pytest.raises(KeyboardInterrupt):
        letta_stack.prepare_pg_root(stack, None)
    monkeypatch.undo()

    letta_stack.prepare_pg_root(stack, None)

    dist = stack.pg_bin.parent.parent.parent
    assert (stack.pg_bin / "postgres").read_text() == "bin/postgres"
    assert (dist / "pgserver.libs" / "libpq.so.5").read_text() == "libpq"
    assert (stack.pg_bin.parent / "include" / "pg.h").exists()


def test_sigterm_stops_up_and_the_command_it_runs(tmp_path: Path) -> None:
    """``kill PID`` (or make passing on SIGTERM) ends ``up`` with its step's command, as
    Ctrl-C does: left running, uv or initdb would go on beside the next ``up``."""
    child = tmp_path / "child.pid"
    script = (
        "from scripts import letta_stack\n"
        "with letta_stack.interruptible():\n"
        f"    letta_stack.run(['sh', '-c', 'echo $$ > {child}; exec sleep 60'])\n"
    )
    up = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not (child.exists() and child.read_text().strip()):
        assert up.poll() is None, up.stderr
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(child.read_text())

    up.send_signal(signal.SIGTERM)
    _, stderr = up.communicate(timeout=30)

    assert "KeyboardInterrupt: SIGTERM" in stderr
    gone = time.monotonic() + 5
    while letta_stack.is_alive(pid) and time.monotonic() < gone:
        time.sleep(0.05)
    alive = letta_stack.is_alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the command of the interrupted step outlived it"
