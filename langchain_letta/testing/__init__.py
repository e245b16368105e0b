"""Record Letta traffic once, replay it in CI: vcrpy settings for Letta.

Use with [pytest-recording](https://github.com/kiwicom/pytest-recording) (vcrpy 8 or 9)
in your `conftest.py`:

``python
import pytest
from langchain_letta.testing import letta_vcr_config, register_letta


@pytest.fixture(scope="module")
def vcr_config():
    return letta_vcr_config()


def pytest_recording_configure(config, vcr):
    register_letta(vcr)
``

Then mark tests with `@pytest.mark.vcr`; record with `pytest --record-mode=rewrite`
against a server, replay with the default `--record-mode=none` and no server.

What may differ between recording and replay:

- **the host**: requests match on method, path, query and JSON body, never on scheme,
  host or port, so a cassette replays against any `base_url` (one that does not resolve);
- **ids**: Letta ids (`agent-…`, `conv-…`, `message-…`, …), any other uuid outside a
  session key, and tool call ids. A recording stores placeholders; a replay maps each id
  the test sends onto the placeholder recorded at the same place, at its first appearance
  in the cassette, and plays responses back with the test's ids. The same agent id as
  when recording replays, and so does another environment's;
- **otids**: their values are ignored (each call may mint its own);
- **the API key**: it is never recorded, and a replay needs none.

What may not: session keys (stored as they are, a uuid in one included), message texts,
names and every other value the test sends, nor the number of distinct ids (one agent
where the recording had two). A request the cassette cannot answer fails naming what
differs.

The modules, one idea each:

- `ids`: which strings are ids, and their stable placeholders;
- `scrub`: secrets never reach a cassette;
- `recording`: what a cassette stores (ids normalized, bulky agent state left out);
- `serializer`: readable YAML cassettes;
- `matching`: JSON body matching;
- `replay`: the test's ids bound to the cassette's placeholders;
- `stale`: clear errors for requests a cassette cannot answer;
- `config`: `letta_vcr_config` and `register_letta`;
- `scan`: a check of a cassette tree for credentials.

Re-record a cassette as a whole (`--record-mode=rewrite`): its placeholder ids mean
nothing to a real server.
"""

from langchain_letta.testing.config import letta_vcr_config, register_letta, register_letta_matchers
from langchain_letta.testing.ids import IdNormalizer
from langchain_letta.testing.matching import IGNORED_BODY_KEYS, json_body_matcher
from langchain_letta.testing.recording import LettaPersister, normalize_interactions
from langchain_letta.testing.replay import ReplayIds
from langchain_letta.testing.scan import SecretFinding, scan_for_secrets
from langchain_letta.testing.scrub import (
    KEPT_HEADERS,
    SCRUBBED,
    SECRET_HEADERS,
    SECRET_QUERY_PARAMETERS,
    scrub_response,
)
from langchain_letta.testing.serializer import letta_serializer
from langchain_letta.testing.stale import stale_cassette_message

__all__ = [
    "IGNORED_BODY_KEYS",
    "KEPT_HEADERS",
    "SCRUBBED",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMETERS",
    "IdNormalizer",
    "LettaPersister",
    "ReplayIds",
    "SecretFinding",
    "json_body_matcher",
    "letta_serializer",
    "letta_vcr_config",
    "normalize_interactions",
    "register_letta",
    "register_letta_matchers",
    "scan_for_secrets",
    "scrub_response",
    "stale_cassette_message",
]
