"""How the examples choose model handles on a server they know nothing about."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "examples"))

from example_setup import EMBEDDING_PREFERENCE, MODEL_PREFERENCE, pick


def test_the_local_fake_llm_comes_first() -> None:
    offered = ["letta/letta-free", "openai/gpt-4o-mini", "openai-proxy/fake-llm"]
    assert pick(offered, MODEL_PREFERENCE) == "openai-proxy/fake-llm"


def test_any_offered_model_beats_letta_free() -> None:
    assert (
        pick(["letta/letta-free", "anthropic/claude-x"], MODEL_PREFERENCE) == "anthropic/claude-x"
    )
    assert pick(["letta/letta-free"], MODEL_PREFERENCE) == "letta/letta-free"


def test_nothing_offered_picks_nothing() -> None:
    assert pick([], EMBEDDING_PREFERENCE) is None


def test_the_usual_embedding_when_offered() -> None:
    offered = ["letta/letta-free", "openai/text-embedding-3-large", "openai/text-embedding-3-small"]
    assert pick(offered, EMBEDDING_PREFERENCE) == "openai/text-embedding-3-small"
    assert pick(offered[:2], EMBEDDING_PREFERENCE) == "openai/text-embedding-3-large"
