"""Fixtures of the stateful tests: the live server, and a fresh agent per plain test."""

from tests.integration_tests.conftest import agent_id, letta

__all__ = ["agent_id", "letta"]
