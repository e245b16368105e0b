"""How far a turn's stream got, so a resumed or recovered stream yields no event twice."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from types import SimpleNamespace
from typing import Any

from langchain_letta.messages import AGENT_SIDE
from langchain_letta.state import MEMORY_CHECKS

__all__ = ["StreamProgress", "closing_events", "run_with_otid"]

_TEXT_FIELDS = {"assistant_message": "content", "reasoning_message": "reasoning"}


class StreamProgress:
    """How far a turn's stream got, so a resumed stream yields no event twice."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.run_id: str | None = None
        self.seq_id = 0
        self.closing_seen: set[str] = set()
        self.events = 0
        self.shown: dict[tuple[str, str], str] = {}

    def _is_new(self, event: Any) -> bool:
        self.run_id = getattr(event, "run_id", None) or self.run_id
        kind = str(getattr(event, "message_type", ""))
        seq_id = getattr(event, "seq_id", None)
        if seq_id is not None:
            if seq_id <= self.seq_id:
                return False
            self.seq_id = seq_id
        elif kind in {"stop_reason", "usage_statistics"}:
            if kind in self.closing_seen:
                return False
            self.closing_seen.add(kind)
        self.events += 1
        item_id = getattr(event, "id", None)
        if item_id and kind in AGENT_SIDE:
            self.shown[(item_id, kind)] = self.shown.get((item_id, kind), "") + _text(event)
        MEMORY_CHECKS.observe(self.agent_id, event)
        return True

    def unseen(self, items: Iterable[Any]) -> Iterator[Any]:
        """The parts of a run's stored `items` that the stream did not show yet.

        An item shown in full is skipped; one shown in part (token deltas) yields the
        rest of its text; the turn's own input is skipped.
        """
        for item in items:
            kind = str(getattr(item, "message_type", ""))
            if kind not in AGENT_SIDE:
                continue
            shown = self.shown.get((getattr(item, "id", ""), kind))
            if shown is None:
                yield item
                continue
            field_name = _TEXT_FIELDS.get(kind)
            full = _text(item)
            if field_name and full.startswith(shown) and len(full) > len(shown):
                yield item.model_copy(update={field_name: full[len(shown) :]})

    @property
    def finished(self) -> bool:
        """Whether the run's stop reason arrived (only usage may be missing after it)."""
        return "stop_reason" in self.closing_seen

    def track(self, stream: Iterable[Any]) -> Iterator[Any]:
        """The events of `stream` not yielded before (each is counted as seen)."""
        return (event for event in stream if self._is_new(event))

    async def atrack(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Async twin of `track`."""
        async for event in stream:
            if self._is_new(event):
                yield event

    def resume_args(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Arguments of the resume request: by run id, else by the turn's first otid."""
        found: dict[str, Any] = {"starting_after": self.seq_id, "include_pings": True}
        if self.run_id:
            found["run_id"] = self.run_id
        elif messages and messages[0].get("otid"):
            found["otid"] = messages[0]["otid"]
        return found


def run_with_otid(items: list[Any], otids: list[str]) -> str | None:
    """The run that stored a message carrying one of `otids`, if `items` show one."""
    wanted = set(otids)
    for item in items:
        if getattr(item, "otid", None) in wanted:
            run_id = getattr(item, "run_id", None)
            return str(run_id) if run_id else None
    return None


def closing_events(run: Any, usage: Any) -> list[Any]:
    """The `stop_reason` and `usage_statistics` events of an ended run."""
    stop = SimpleNamespace(
        message_type="stop_reason", stop_reason=str(run.stop_reason or run.status), run_id=run.id
    )
    statistics = SimpleNamespace(
        message_type="usage_statistics",
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
        cached_input_tokens=None,
        reasoning_tokens=None,
        run_id=run.id,
    )
    return [stop, statistics]


def _text(item: Any) -> str:
    value = getattr(item, _TEXT_FIELDS.get(str(getattr(item, "message_type", "")), ""), None)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(getattr(part, "text", None) or "" for part in value)
    return ""
