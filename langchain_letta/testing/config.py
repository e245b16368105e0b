"""vcrpy settings for Letta and the one call that installs the rest on a `vcr.VCR`."""

from __future__ import annotations

from typing import Any

from langchain_letta.prefetch import one_after_the_other
from langchain_letta.testing.matching import json_body_matcher
from langchain_letta.testing.recording import LettaPersister
from langchain_letta.testing.replay import install_replay_ids
from langchain_letta.testing.scrub import SECRET_HEADERS, SECRET_QUERY_PARAMETERS, scrub_response
from langchain_letta.testing.serializer import letta_serializer
from langchain_letta.testing.stale import install_clear_stale_cassette_errors

__all__ = ["letta_vcr_config", "register_letta", "register_letta_matchers"]


def letta_vcr_config(**overrides: Any) -> dict[str, Any]:
    """Settings for vcrpy to record Letta traffic (see the package docstring); `overrides` win."""
    config: dict[str, Any] = {
        "filter_headers": [(name, None) for name in SECRET_HEADERS],
        "filter_query_parameters": [(name, None) for name in SECRET_QUERY_PARAMETERS],
        "match_on": ("method", "path", "query", "letta_json_body"),
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "allow_playback_repeats": False,
    }
    config.update(overrides)
    return config


def register_letta(vcr: Any, *, trim: bool = True) -> None:
    """Install the Letta matcher, serializer and persister on a `vcr.VCR` instance.

    With pytest-recording, call it from the `pytest_recording_configure` hook. `trim`
    leaves the bulky, static parts of agent state (tool schemas) out of recordings.
    Cassettes of this VCR replay with the test's own ids (see
    `langchain_letta.testing.replay`) and explain a request they cannot answer. The
    package's reads that may run side by side (`langchain_letta.prefetch`) then run
    one after the other, so a re-recording stores the same requests in the same order.
    """
    vcr.register_matcher("letta_json_body", json_body_matcher)
    vcr.register_serializer("yaml", letta_serializer)
    current = getattr(vcr, "persister", None)
    if isinstance(current, LettaPersister):
        current = current.inner
    vcr.register_persister(LettaPersister(inner=current, trim=trim))
    install_replay_ids()
    install_clear_stale_cassette_errors()
    one_after_the_other()  # requests in one order, so re-recordings stay byte-stable


register_letta_matchers = register_letta
"""The earlier name of `register_letta` (it installs everything)."""
