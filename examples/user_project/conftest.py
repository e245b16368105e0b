"""The user project's ``conftest.py``: the three lines that record and replay Letta traffic.

Cassettes go to ``cassettes/<test module>/``, pytest-recording's default.
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
