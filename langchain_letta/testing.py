"""Record Letta traffic once, replay it in CI: vcrpy settings for Letta.

Use with `pytest-recording <https://github.com/kiwicom/pytest-recording>`_ in your
``conftest.py``:

.. code-block:: python

    import pytest
    from langchain_letta.testing import letta_vcr_config, register_letta

    @pytest.fixture(scope="module")
    def vcr_config():
        return letta_vcr_config()

    def pytest_recording_configure(config, vcr):
        register_letta(vcr)

Then mark tests with ``@pytest.mark.vcr``; record with ``pytest --record-mode=rewrite``
against a server, replay with the default ``--record-mode=none`` and no server.

What it does:

* **scrubs secrets**: only the ``content-type`` header is kept on requests and responses
  (no ``Authorization``, API key, cookie or ``Set-Cookie`` ever reaches a cassette); API
  keys, bearer tokens and secret-named JSON fields in bodies and query strings are
  replaced; :func:`scan_for_secrets` checks a cassette tree for leftovers;
* **normalizes Letta ids**: every server-minted id (``agent-<uuid>``, ``conv-<uuid>``,
  ``message-<uuid>``, ``run-<uuid>``, ``step-<uuid>``, bare uuids such as ``otid``, tool
  call ids ``call_...``) is
  rewritten on record to a stable placeholder, the same within a cassette and unique to
  it (``conv-1a2b3c4d-0000-4000-8000-000000000002``), so re-recording yields the same
  request paths and bodies, and a replay sends exactly what was recorded;
* **matches host-agnostically**: on method, path, query and JSON body (ignoring
  ``otid`` values, derived client-side from ids), never on scheme, host or port, so a
  cassette recorded against one server replays against any base URL;
* **replays SSE** bodies as recorded text, so streaming still yields chunks;
* **stays small and reviewable**: JSON bodies are stored as YAML structures (repeated long
  strings, such as the compiled system prompt, once with YAML aliases after that), SSE
  bodies as literal text, and the bulky static parts of agent state (tool schemas and
  descriptions) are left out;
* **explains stale cassettes**: a request with no recorded match fails naming its method,
  path and body, the closest recorded request and where the two differ.

Re-record a cassette as a whole (``--record-mode=rewrite``): a cassette's placeholder ids
mean nothing to a real server.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

__all__ = [
    "SECRET_HEADERS",
    "IdNormalizer",
    "LettaPersister",
    "SecretFinding",
    "json_body_matcher",
    "letta_serializer",
    "letta_vcr_config",
    "register_letta",
    "register_letta_matchers",
    "scan_for_secrets",
    "scrub_response",
    "stale_cassette_message",
]

SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
    "x-letta-api-key",
    "x-project",
)
"""Headers that never reach a cassette (every header but ``content-type`` is dropped)."""

KEPT_HEADERS = ("content-type",)
"""The only headers kept in a cassette, on requests and responses."""

IGNORED_BODY_KEYS = frozenset({"otid"})
"""JSON keys whose values request matching ignores: ``otid`` is derived client-side from
the conversation id, which differs between a live recording and a replay."""

SECRET_QUERY_PARAMETERS = ("api_key", "apikey", "token", "access_token")

SCRUBBED = "<scrubbed>"

_UUID = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
)
_PLACEHOLDER = re.compile(r"^[0-9a-f]{8}-0000-4000-8000-(\d{12})$")
_CALL_ID = re.compile(r"(?<![A-Za-z0-9_])call_[A-Za-z0-9]{16,}(?![A-Za-z0-9])")
_CALL_PLACEHOLDER = re.compile(r"^call_[0-9a-f]{8}x(\d{15})$")
_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:api[_-]?key|apikey|password|passwd|secret|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|bearer|authorization|cookie|token)$",
    re.IGNORECASE,
)
_SECRET_TEXT = (
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"),  # OpenAI/Anthropic/Letta-style keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
)
_AGENT_TOOL_BULK = ("description", "json_schema", "args_json_schema", "source_code")
_ALIAS_MIN_CHARS = 200


# --- id normalization --------------------------------------------------------------------


class IdNormalizer:
    """Rewrites Letta ids to placeholders stable within one cassette and unique to it.

    Any uuid is rewritten, its ``agent-``/``conv-``/... prefix kept.

    A placeholder is ``<8 hex of the cassette name's hash>-0000-4000-8000-<counter>``;
    placeholders (and Letta's fixed all-zero ids) are left as they are.
    """

    def __init__(self, scope: str) -> None:
        self.tag = hashlib.sha256(scope.encode()).hexdigest()[:8]
        self.mapping: dict[str, str] = {}
        self.counter = 0

    def seen(self, text: str) -> None:
        """Count placeholders already in ``text`` so new ones never collide with them."""
        for found in _UUID.findall(text):
            match = _PLACEHOLDER.match(found)
            if match and found.startswith(self.tag):
                self.counter = max(self.counter, int(match.group(1)))
        for found in _CALL_ID.findall(text):
            match = _CALL_PLACEHOLDER.match(found)
            if match and found.startswith(f"call_{self.tag}"):
                self.counter = max(self.counter, int(match.group(1)))

    def placeholder(self, value: str) -> str:
        """The placeholder for one uuid."""
        if _PLACEHOLDER.match(value):
            return value
        if value not in self.mapping:
            self.counter += 1
            self.mapping[value] = f"{self.tag}-0000-4000-8000-{self.counter:012d}"
        return self.mapping[value]

    def call_id(self, value: str) -> str:
        """The placeholder for one tool call id (``call_...``)."""
        if _CALL_PLACEHOLDER.match(value):
            return value
        if value not in self.mapping:
            self.counter += 1
            self.mapping[value] = f"call_{self.tag}x{self.counter:015d}"
        return self.mapping[value]

    def text(self, text: str) -> str:
        """``text`` with every uuid and tool call id in it replaced by its placeholder."""
        text = _UUID.sub(lambda m: self.placeholder(m.group(0)), text)
        return _CALL_ID.sub(lambda m: self.call_id(m.group(0)), text)


def _scope(cassette_path: str | Path) -> str:
    """A cassette's name, independent of where the checkout lives."""
    path = Path(cassette_path)
    return f"{path.parent.name}/{path.name}"


# --- scrubbing -----------------------------------------------------------------------------


def _scrub_text(text: str) -> str:
    for pattern in _SECRET_TEXT:
        text = pattern.sub(SCRUBBED, text)
    return text


def _scrub_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                SCRUBBED
                if _SECRET_KEY.match(key) and isinstance(item, str) and item
                else _scrub_json(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub_json(item) for item in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def _scrub_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if not parts.query:
        return _scrub_text(uri)
    query = [
        (key, SCRUBBED if key.lower() in SECRET_QUERY_PARAMETERS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return _scrub_text(urlunsplit(parts._replace(query=urlencode(query))))


def _keep_headers(headers: Any) -> dict[str, Any]:
    return {name: value for name, value in (headers or {}).items() if name.lower() in KEPT_HEADERS}


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep only the ``content-type`` header of a recorded response (vcrpy hook)."""
    response["headers"] = _keep_headers(response.get("headers"))
    return response


# --- trimming ------------------------------------------------------------------------------


def _trim(value: Any) -> Any:
    """Leave bulky, static agent state out: tool schemas and descriptions, compaction prompt."""
    if isinstance(value, list):
        return [_trim(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "agent_type" in value and isinstance(value.get("tools"), list):
        value = dict(value)
        value["tools"] = [
            {k: v for k, v in tool.items() if k not in _AGENT_TOOL_BULK}
            if isinstance(tool, dict)
            else tool
            for tool in value["tools"]
        ]
        compaction = value.get("compaction_settings")
        if isinstance(compaction, dict) and "prompt" in compaction:
            value["compaction_settings"] = {k: v for k, v in compaction.items() if k != "prompt"}
        return value
    return {key: _trim(item) for key, item in value.items()}


# --- bodies --------------------------------------------------------------------------------


def _text(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(body)


def _as_json(text: str | None) -> Any:
    if not text or text[0] not in '{["':
        return _NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def _dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _rewrite_body(body: Any, normalize: IdNormalizer, *, trim: bool) -> Any:
    """A body with ids normalized and secrets scrubbed (JSON compact; text otherwise)."""
    text = _text(body)
    if text is None:
        return body
    text = normalize.text(text)
    parsed = _as_json(text)
    if parsed is _NOT_JSON:
        return _scrub_text(text)
    parsed = _scrub_json(parsed)
    return _dump_json(_trim(parsed) if trim else parsed)


# --- persister -----------------------------------------------------------------------------


@dataclass
class LettaPersister:
    """A vcrpy persister that normalizes ids and scrubs secrets on save.

    Loads through ``inner`` (say, pytest-recording's persister). On save it also keeps only
    ``content-type`` headers and (with ``trim``) drops bulky agent fields.
    """

    inner: Any = None
    trim: bool = True

    def load_cassette(self, cassette_path: Any, serializer: Any) -> Any:
        """Load as ``inner`` does."""
        from vcr.persisters.filesystem import FilesystemPersister

        return (self.inner or FilesystemPersister).load_cassette(cassette_path, serializer)

    def save_cassette(self, cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        """Write the cassette, ids normalized and secrets scrubbed."""
        from vcr.serializers import compat

        interactions = [
            {
                "request": compat.convert_to_unicode(request._to_dict()),
                "response": compat.convert_to_unicode(copy.deepcopy(response)),
            }
            for request, response in zip(
                cassette_dict["requests"], cassette_dict["responses"], strict=True
            )
        ]
        data = {
            "interactions": normalize_interactions(
                interactions, _scope(cassette_path), trim=self.trim
            ),
            "version": 1,
        }
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(serializer.serialize(data), encoding="utf-8")


def normalize_interactions(
    interactions: list[dict[str, Any]], scope: str, *, trim: bool = True
) -> list[dict[str, Any]]:
    """Interactions (vcrpy's dict form) with ids normalized, secrets scrubbed, headers cut.

    Ids are numbered in order of first appearance in the requests (what the client sends
    is deterministic), then in the responses.
    """
    normalize = IdNormalizer(scope)
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        normalize.seen(str(request.get("uri", "")) + (_text(request.get("body")) or ""))
        normalize.seen(_text((response.get("body") or {}).get("string")) or "")
    result = []
    for interaction in interactions:
        request = dict(interaction["request"])
        request["uri"] = _scrub_uri(normalize.text(request["uri"]))
        request["body"] = _rewrite_body(request.get("body"), normalize, trim=False)
        request["headers"] = _keep_headers(request.get("headers"))
        result.append({"request": request, "response": interaction["response"]})
    for interaction in result:
        response = dict(interaction["response"])
        body = dict(response.get("body") or {})
        body["string"] = _rewrite_body(body.get("string"), normalize, trim=trim)
        response["body"] = body
        response["headers"] = _keep_headers(response.get("headers"))
        interaction["response"] = response
    return result


# --- serializer ----------------------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """YAML with literal blocks for multi-line text and aliases for repeated long strings."""

    def ignore_aliases(self, data: Any) -> bool:
        if isinstance(data, str):
            return len(data) < _ALIAS_MIN_CHARS
        return bool(super().ignore_aliases(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LettaSerializer:
    """vcrpy serializer: readable YAML, JSON bodies as structures, SSE bodies as text.

    Loads plain vcrpy YAML cassettes too.
    """

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        interned: dict[str, str] = {}

        def intern(value: Any) -> Any:
            if isinstance(value, str) and len(value) >= _ALIAS_MIN_CHARS:
                return interned.setdefault(value, value)
            if isinstance(value, dict):
                return {k: intern(v) for k, v in value.items()}
            if isinstance(value, list):
                return [intern(v) for v in value]
            return value

        interactions = []
        for interaction in cassette_dict["interactions"]:
            old = interaction["request"]
            request: dict[str, Any] = {"method": old.get("method"), "uri": old.get("uri")}
            request.update({k: v for k, v in old.items() if k not in {"body", "method", "uri"}})
            body = old.get("body")
            parsed = _as_json(_text(body))
            if parsed is _NOT_JSON:
                request["body"] = _text(body) if _text(body) is not None else body
            else:
                request["json"] = intern(parsed)
            response = dict(interaction["response"])
            string = (response.pop("body", None) or {}).get("string")
            parsed = _as_json(_text(string))
            if parsed is _NOT_JSON:
                text = _text(string)
                response["body"] = {"string": text if text is not None else string}
            else:
                response["json"] = intern(parsed)
            interactions.append({"request": request, "response": response})
        data = {"interactions": interactions, "version": cassette_dict.get("version", 1)}
        dumped: str = yaml.dump(
            data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000
        )
        return dumped

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        data = yaml.load(cassette_string, Loader=_Loader)
        if not isinstance(data, dict):
            return data  # type: ignore[no-any-return]
        for interaction in data.get("interactions", []):
            request, response = interaction["request"], interaction["response"]
            if "json" in request:
                request["body"] = _dump_json(request.pop("json"))
            request.setdefault("body", None)
            request.setdefault("headers", {})
            if "json" in response:
                response["body"] = {"string": _dump_json(response.pop("json"))}
            response.setdefault("headers", {})
        return data


letta_serializer = _LettaSerializer()
"""The serializer :func:`register_letta` installs as ``yaml`` (cassettes stay ``.yaml``)."""


# --- matching ------------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in IGNORED_BODY_KEYS}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _body_json(body: bytes | str | None) -> Any:
    text = _text(body)
    if not text:
        return None
    parsed = _as_json(text)
    return text if parsed is _NOT_JSON else _comparable(parsed)


def _first_difference(recorded: Any, sent: Any, where: str = "") -> str | None:
    if isinstance(recorded, dict) and isinstance(sent, dict):
        for key in list(recorded) + [k for k in sent if k not in recorded]:
            if key not in sent:
                return f"{where}.{key}: recorded {_short(recorded[key])}, not sent"
            if key not in recorded:
                return f"{where}.{key}: sent {_short(sent[key])}, not recorded"
            found = _first_difference(recorded[key], sent[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(sent, list):
        for index, (old, new) in enumerate(zip(recorded, sent, strict=False)):
            found = _first_difference(old, new, f"{where}[{index}]")
            if found:
                return found
        if len(recorded) != len(sent):
            return f"{where}: recorded {len(recorded)} items, sent {len(sent)}"
        return None
    if recorded == SCRUBBED and isinstance(sent, str):
        return None  # a secret scrubbed on record matches whatever is sent
    if recorded != sent:
        return f"{where or 'body'}: recorded {_short(recorded)}, sent {_short(sent)}"
    return None


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def json_body_matcher(sent: Any, recorded: Any) -> None:
    """A vcrpy matcher: request bodies equal as JSON.

    Key order, spacing and ``otid`` values are ignored. vcrpy passes the request being
    made first, the recorded one second.
    """
    difference = _first_difference(_body_json(recorded.body), _body_json(sent.body))
    if difference:
        raise AssertionError(f"request body differs for {sent.method} {sent.path}: {difference}")


def _masked_path(path: str) -> str:
    return _UUID.sub("<id>", path)


def stale_cassette_message(cassette: Any, request: Any) -> str:
    """Why ``request`` found no recorded response in ``cassette``, and how to fix it."""
    sent = f"{request.method} {request.path}" + (
        f"?{urlsplit(request.uri).query}" if request.query else ""
    )
    lines = [
        f"Stale cassette {cassette._path}: no recorded response for {sent}",
        f"  sent body: {_short(_body_json(request.body), 300)}",
    ]
    candidates: list[tuple[int, int, Any]] = []
    for index, (old, _) in enumerate(cassette.data):
        score = (
            (old.method == request.method) * 4
            + (old.path == request.path) * 4
            + (_masked_path(old.path) == _masked_path(request.path)) * 2
            + (old.query == request.query)
        )
        played = cassette.play_counts[index] > 0
        candidates.append((score - played, -index, old))
    if candidates:
        _, _, closest = max(candidates, key=lambda c: (c[0], c[1]))
        lines.append(
            f"  closest recorded: {closest.method} {closest.path}"
            + (f"?{urlsplit(closest.uri).query}" if closest.query else "")
        )
        if closest.path != request.path and _masked_path(closest.path) == _masked_path(
            request.path
        ):
            lines.append(
                "  the paths differ only in ids: ids come from earlier responses, so an earlier "
                "request of this test went differently (or this cassette was edited)"
            )
        if closest.method == request.method and closest.path == request.path:
            difference = _first_difference(_body_json(closest.body), _body_json(request.body))
            if closest.query != request.query:
                lines.append(f"  query differs: recorded {closest.query}, sent {request.query}")
            lines.append(f"  first difference: {difference or 'none (already played)'}")
    else:
        lines.append("  the cassette records no requests")
    lines.append(
        "  The code under test now talks to Letta differently from the recording: re-record "
        "this cassette against a server (pytest --record-mode=rewrite; in this project "
        "LETTA_TEST_MODE=record)."
    )
    return "\n".join(lines)


def _install_clear_stale_cassette_errors() -> None:
    from vcr import errors

    exception = errors.CannotOverwriteExistingCassetteException
    original = exception.__dict__["_get_message"]
    if getattr(original, "_letta", False):
        return

    def _get_message(cassette: Any, failed_request: Any) -> str:
        try:
            clear = stale_cassette_message(cassette, failed_request)
        except Exception:  # pragma: no cover - never hide vcrpy's own message
            clear = ""
        return f"{clear}\n\n{original.__func__(cassette, failed_request)}".strip()

    _get_message._letta = True  # type: ignore[attr-defined]
    exception._get_message = staticmethod(_get_message)


# --- configuration -------------------------------------------------------------------------


def letta_vcr_config(**overrides: Any) -> dict[str, Any]:
    """Settings for vcrpy to record Letta traffic (see the module docstring); ``overrides`` win."""
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
    """Install the Letta matcher, serializer and persister on a ``vcr.VCR`` instance.

    With pytest-recording, call it from the ``pytest_recording_configure`` hook. ``trim``
    leaves the bulky, static parts of agent state (tool schemas) out of recordings.
    """
    vcr.register_matcher("letta_json_body", json_body_matcher)
    vcr.register_serializer("yaml", letta_serializer)
    current = getattr(vcr, "persister", None)
    if isinstance(current, LettaPersister):
        current = current.inner
    vcr.register_persister(LettaPersister(inner=current, trim=trim))
    _install_clear_stale_cassette_errors()


register_letta_matchers = register_letta
"""The earlier name of :func:`register_letta` (it installs everything)."""


# --- secret scan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretFinding:
    """Something that looks like a credential in a cassette file."""

    path: Path
    line: int
    kind: str
    excerpt: str


_SCAN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("authorization header", re.compile(r"(?im)^\s*-?\s*['\"]?(?:proxy-)?authorization['\"]?\s*:")),
    ("api key header", re.compile(r"(?im)^\s*-?\s*['\"]?x-(?:letta-)?api-key['\"]?\s*:")),
    ("cookie header", re.compile(r"(?im)^\s*-?\s*['\"]?(?:set-)?cookie['\"]?\s*:")),
    ("bearer token", re.compile(r"(?i)\bbearer\s+(?!<scrubbed>)[A-Za-z0-9._~+/=-]{8,}")),
    ("api key", re.compile(r"\b(?:sk|pk|rk)-(?!<scrubbed>)[A-Za-z0-9_-]{16,}")),
    (
        "secret field",
        re.compile(
            r"(?i)['\"]?\b[a-z_-]*(?:api[_-]?key|password|secret|access[_-]?token)['\"]?\s*[:=]"
            r"\s*['\"]?(?!<scrubbed>)[A-Za-z0-9._~+/=-]{12,}"
        ),
    ),
    (
        "secret query parameter",
        re.compile(
            r"(?i)[?&](?:api_key|apikey|access_token|token)="
            r"(?!%3Cscrubbed%3E)[^&\s'\"]{6,}"
        ),
    ),
)


def scan_for_secrets(
    roots: Iterable[str | Path], extra_values: Iterable[str] = ()
) -> list[SecretFinding]:
    """Credentials found in the cassette files under ``roots`` (``.yaml``/``.yml``/``.json``).

    ``extra_values`` are literal secrets to look for too (say, the ``LETTA_API_KEY`` in
    use); values shorter than 8 characters are ignored.
    """
    literals = [value for value in extra_values if value and len(value) >= 8]
    findings: list[SecretFinding] = []
    for path in _cassette_files(roots):
        text = path.read_text(encoding="utf-8", errors="replace")
        for kind, pattern in _SCAN_PATTERNS:
            for match in pattern.finditer(text):
                findings.append(_finding(path, text, match.start(), kind, match.group(0)))
        for value in literals:
            start = text.find(value)
            if start >= 0:
                findings.append(_finding(path, text, start, "configured secret", value[:4] + "..."))
    return findings


def _cassette_files(roots: Iterable[str | Path]) -> Iterator[Path]:
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.suffix in {".yaml", ".yml", ".json"}:
                    yield path


def _finding(path: Path, text: str, start: int, kind: str, excerpt: str) -> SecretFinding:
    return SecretFinding(path, text.count("\n", 0, start) + 1, kind, excerpt[:60])
