"""LangChain's standard integration tests for ``ChatLetta`` against a real Letta server.

Replayed from ``cassettes/test_standard/`` by default. Every test gets its own agent
(named after the test, so recorded request bodies replay), and each unkeyed call runs
in a new conversation of that agent.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.conftest import MODE
from tests.letta_capabilities import LettaCapabilities

pytestmark = pytest.mark.vcr

LIVE_ONLY = frozenset({"test_batch", "test_abatch"})
"""Unkeyed concurrent calls each create a conversation; which call gets which one depends
on thread timing, so these always run against the real server (``conftest.py`` marks them
``live``: standard tests may not be overridden)."""


class TestChatLettaStandard(LettaCapabilities, ChatModelIntegrationTests):
    _letta_params: dict[str, Any]

    @pytest.fixture(autouse=True)
    def _letta_agent(self, base_url: str, agent_id: str) -> None:
        self._letta_params = {"agent_id": agent_id, "base_url": base_url}

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(self._letta_params)

    @property
    def supports_model_override(self) -> bool:
        return False  # the fake LLM serves one model; see test_chat_models_unit

    @property
    def enable_vcr_tests(self) -> bool:
        return MODE != "live"  # they time a cassette's replay; live runs have none

    @pytest.mark.xfail(
        reason="downloads its image from raw.githubusercontent.com, which this offline test "
        "stack cannot reach; Letta's base64 image input is covered by "
        "test_tools.py::test_base64_image_input"
    )
    def test_image_inputs(self, model: BaseChatModel) -> None:
        super().test_image_inputs(model)
