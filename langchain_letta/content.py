"""The parts of a user message (text, images), LangChain's blocks <-> Letta's parts."""

from __future__ import annotations

from typing import Any

from langchain_letta.errors import LettaInputError

__all__ = ["user_content_from_letta", "user_part"]


def user_part(block: Any) -> dict[str, Any]:
    """One LangChain content block of a user message as a Letta message part."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image" and block.get("base64"):
        media_type = block.get("mime_type") or "image/png"
        source = {"type": "base64", "media_type": media_type, "data": block["base64"]}
        return {"type": "image", "source": source}
    if kind == "image" and block.get("url"):
        url = str(block["url"])
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            media_type = header[5:].split(";")[0] or "image/png"
            source = {"type": "base64", "media_type": media_type, "data": data}
            return {"type": "image", "source": source}
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise LettaInputError(
        f"Letta accepts text and image content; a {kind!r} content block cannot be sent."
    )


def user_content_from_letta(content: Any) -> str | list[str | dict[str, Any]]:
    """A stored Letta user message's content as LangChain content (text, image blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str | dict[str, Any]] = []
    for part in content:
        data = part.model_dump(exclude_none=True) if hasattr(part, "model_dump") else dict(part)
        if data.get("type") == "text":
            parts.append({"type": "text", "text": data.get("text", "")})
        elif data.get("type") == "image":
            source = data.get("source") or {}
            if source.get("type") == "base64" or source.get("data"):
                parts.append(
                    {
                        "type": "image",
                        "base64": source.get("data"),
                        "mime_type": source.get("media_type"),
                    }
                )
            else:
                parts.append({"type": "image", "url": source.get("url")})
    return parts
