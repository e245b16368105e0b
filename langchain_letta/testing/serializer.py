"""Cassettes a reviewer can read: YAML, JSON bodies as structures, SSE bodies as text.

Repeated long strings (such as the compiled system prompt) are stored once and referred to
with YAML aliases after that. Plain vcrpy YAML cassettes load too.
"""

from __future__ import annotations

from typing import Any

import yaml

from langchain_letta.testing.bodies import NOT_JSON, as_json, body_text, dump_json

__all__ = ["letta_serializer"]

_ALIAS_MIN_CHARS = 200


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
            parsed = as_json(body_text(body))
            if parsed is NOT_JSON:
                request["body"] = body_text(body) if body_text(body) is not None else body
            else:
                request["json"] = intern(parsed)
            response = dict(interaction["response"])
            string = (response.pop("body", None) or {}).get("string")
            parsed = as_json(body_text(string))
            if parsed is NOT_JSON:
                text = body_text(string)
                response["body"] = {"string": text if text is not None else string}
            else:
                response["json"] = intern(parsed)
            interactions.append({"request": request, "response": response})
        data: dict[str, Any] = {
            "interactions": interactions,
            "version": cassette_dict.get("version", 1),
        }
        if cassette_dict.get("metadata"):
            data["metadata"] = cassette_dict["metadata"]
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
                request["body"] = dump_json(request.pop("json"))
            request.setdefault("body", None)
            request.setdefault("headers", {})
            if "json" in response:
                response["body"] = {"string": dump_json(response.pop("json"))}
            response.setdefault("headers", {})
        return data


letta_serializer = _LettaSerializer()
"""The serializer `register_letta` installs as `yaml` (cassettes stay `.yaml`)."""
