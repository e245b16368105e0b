"""``make``'s ``.venv`` after a first ``make demo`` / ``make test`` that was cut short.

Ctrl-C 11.5 s into it left syrupy's metadata without its modules; the next ``make``
took the package as installed, and pytest no longer started (its plugin failed to load)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.live  # installs from the package registry


def make_venv(project: Path) -> None:
    done = subprocess.run(
        ["make", ".venv/.installed", f"PYTHON={sys.executable}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_venv_an_interrupted_make_left_is_built_anew(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "langchain_letta", project / "langchain_letta")
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    make_venv(project)
    python = project / ".venv" / "bin" / "python"
    (site,) = (project / ".venv" / "lib").glob("python3*/site-packages")
    shutil.rmtree(site / "hypothesis")  # its metadata stays, as the interrupted install left it
    (project / ".venv" / ".installed").unlink()

    make_venv(project)

    imported = subprocess.run(
        [str(python), "-c", "import hypothesis"], capture_output=True, text=True, timeout=60
    )
    assert imported.returncode == 0, imported.stderr
