"""What a cassette stores: ids normalized, secrets scrubbed, bulky agent state left out.

`LettaPersister` writes every cassette through `normalize_interactions`, so
re-recording the same traffic yields the same bytes (ids are numbered in order of first
appearance, and nothing else varies between runs but timestamps the server sends).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_letta.testing.bodies import NOT_JSON, as_json, body_text, dump_json
from langchain_letta.testing.ids import IdNormalizer, cassette_scope
from langchain_letta.testing.scrub import keep_headers, scrub_json, scrub_text, scrub_uri

__all__ = ["LettaPersister", "normalize_interactions"]

_AGENT_TOOL_BULK = ("description", "json_schema", "args_json_schema", "source_code")


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


def _rewrite_body(body: Any, normalize: IdNormalizer, *, trim: bool) -> Any:
    """A body with ids normalized and secrets scrubbed (JSON compact; text otherwise)."""
    text = body_text(body)
    if text is None:
        return body
    text = normalize.text(text)
    parsed = as_json(text)
    if parsed is NOT_JSON:
        return scrub_text(text)
    parsed = scrub_json(parsed)
    return dump_json(_trim(parsed) if trim else parsed)


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
        normalize.seen(str(request.get("uri", "")) + (body_text(request.get("body")) or ""))
        normalize.seen(body_text((response.get("body") or {}).get("string")) or "")
    result = []
    for interaction in interactions:
        request = dict(interaction["request"])
        request["uri"] = scrub_uri(normalize.text(request["uri"]))
        request["body"] = _rewrite_body(request.get("body"), normalize, trim=False)
        request["headers"] = keep_headers(request.get("headers"))
        result.append({"request": request, "response": interaction["response"]})
    for interaction in result:
        response = dict(interaction["response"])
        body = dict(response.get("body") or {})
        body["string"] = _rewrite_body(body.get("string"), normalize, trim=trim)
        response["body"] = body
        response["headers"] = keep_headers(response.get("headers"))
        interaction["response"] = response
    return result


@dataclass
class LettaPersister:
    """A vcrpy persister that normalizes ids and scrubs secrets on save.

    Loads through `inner` (say, pytest-recording's persister). On save it also keeps only
    `content-type` headers and (with `trim`) drops bulky agent fields.
    """

    inner: Any = None
    trim: bool = True

    def load_cassette(self, cassette_path: Any, serializer: Any) -> Any:
        """Load as `inner` does."""
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
        data: dict[str, Any] = {
            "interactions": normalize_interactions(
                interactions, cassette_scope(cassette_path), trim=self.trim
            ),
            "version": 1,
        }
        if cassette_dict.get("metadata"):  # vcrpy 9's Cassette.get_metadata
            data["metadata"] = cassette_dict["metadata"]
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(serializer.serialize(data), encoding="utf-8")
