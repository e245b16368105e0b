"""What an app's own ``conftest.py`` needs to record and replay its Letta traffic.

Requires ``pytest-recording`` (and ``vcrpy``). Cassettes go to ``cassettes/<test module>/``
next to this file, pytest-recording's default.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_letta.testing import letta_vcr_config, register_letta


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return letta_vcr_config()


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    register_letta(vcr)


# A project of its own (its own pytest.ini and conftest.py), run by tests/test_user_project.py.
collect_ignore = ["user_project"]
