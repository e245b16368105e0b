"""Clear failures: a request a cassette cannot answer is named, with what differs and why.

The message names the request, the closest recorded one and the first difference between
them, ids compared as the replay maps them: an id in a place where the recording has
something else, two ids of the test where the recording had one (or one where it had two),
and a session key or text that differs from the recorded one are each said as such. Code
that catches such an error and sends something else (a retry, a lookup) fails on a request
the recording never had: the message then also names the first request of the cassette
that found no recorded response.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from langchain_letta.testing.bodies import short
from langchain_letta.testing.ids import SESSION_TAG, UUID
from langchain_letta.testing.matching import Compare, body_json, first_difference
from langchain_letta.testing.replay import ReplayIds, replay_ids

__all__ = ["install_clear_stale_cassette_errors", "stale_cassette_message"]

WHAT_MAY_DIFFER = (
    "Between recording and replay only the host, the ids (Letta ids and uuids outside "
    "session keys, each mapped onto the recorded one at first use), otids and the API key "
    "may differ; "
    "session keys, texts and every other value must be the same."
)


def _masked_path(path: str) -> str:
    return UUID.sub("<id>", path)


def _sent(request: Any) -> str:
    return f"{request.method} {request.path}" + (
        f"?{urlsplit(request.uri).query}" if request.query else ""
    )


def _compare(ids: ReplayIds | None) -> Compare:
    def compare(recorded: str, sent: str) -> str | None:
        if recorded == sent:
            return None
        found = ids.explain(recorded, sent) if ids else None
        if ids and found is None:
            return None
        found = found or f"recorded {short(recorded)}, sent {short(sent)}"
        if SESSION_TAG.search(recorded) or SESSION_TAG.search(sent):
            found += (
                " (a session key: the test must use the same session keys when replaying as "
                "when recording, not random ones)"
            )
        return found

    return compare


def _query_difference(recorded: Any, sent: Any, compare: Compare) -> str | None:
    old, new = dict(recorded.query), dict(sent.query)
    for key in list(old) + [k for k in new if k not in old]:
        if key not in new:
            return f"query {key}: recorded {short(old[key])}, not sent"
        if key not in old:
            return f"query {key}: sent {short(new[key])}, not recorded"
        found = compare(old[key], new[key])
        if found:
            return f"query {key}: {found}"
    return None


def stale_cassette_message(cassette: Any, request: Any) -> str:
    """Why `request` found no recorded response in `cassette`, and how to fix it."""
    ids = replay_ids(cassette)
    original = request
    if ids:
        request = ids.translate(request, cassette)
    compare = _compare(ids)
    lines = [
        f"Stale cassette {cassette._path}: no recorded response for {_sent(original)}",
        f"  sent body: {short(body_json(original.body), 300)}",
    ]
    scored: list[tuple[int, int, Any]] = []
    for index, (old, _) in enumerate(cassette.data):
        score = (
            (old.method == request.method) * 6
            + (old.path == request.path) * 4
            + (_masked_path(old.path) == _masked_path(request.path)) * 2
            + (old.query == request.query)
            + (sorted(dict(old.query)) == sorted(dict(request.query)))
        )
        played = cassette.play_counts[index] > 0
        if (
            played
            and score == 14
            and not first_difference(body_json(old.body), body_json(request.body))
        ):
            lines.append(
                f"  it matches recorded request #{index + 1}, already played: the test sends "
                "it more often than the recording did"
            )
        scored.append((score - 5 * played, -index, old))
    if scored:
        _, _, closest = max(scored, key=lambda c: (c[0], c[1]))
        lines.append(f"  closest recorded: {_sent(closest)}")
        if closest.method == request.method and closest.path.count("/") == request.path.count("/"):
            path = compare(closest.path, original.path)
            difference = (
                (path and f"path: {path}")
                or _query_difference(closest, original, compare)
                or first_difference(
                    body_json(closest.body), body_json(original.body), compare=compare
                )
            )
            lines.append(f"  first difference: {difference or 'none'}")
    else:
        lines.append("  the cassette records no requests")
    earlier = cassette.__dict__.get("_letta_unanswered") or []
    if earlier:
        lines.append(
            f"  earlier in this cassette {len(earlier)} request(s) found no recorded response "
            "(the code under test may have caught that error and sent this request instead); "
            "the first one:"
        )
        lines += [f"    {line}" for line in earlier[0]]
    lines.append(f"  {WHAT_MAY_DIFFER}")
    lines.append(
        "  Otherwise the code under test now talks to Letta differently from the recording: "
        "re-record this cassette against a server (pytest --record-mode=rewrite; in this "
        "project LETTA_TEST_MODE=record)."
    )
    return "\n".join(lines)


def install_clear_stale_cassette_errors() -> None:
    """Put `stale_cassette_message` first in vcrpy's "cannot overwrite" errors."""
    from vcr import errors

    exception = errors.CannotOverwriteExistingCassetteException
    original = exception.__init__
    if getattr(original, "_letta", False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original(self, *args, **kwargs)
        cassette = kwargs["cassette"]
        try:
            clear = stale_cassette_message(cassette, kwargs["failed_request"])
        except Exception:  # pragma: no cover - never hide vcrpy's own message
            return
        summary = [
            line.strip()
            for line in clear.splitlines()[:5]
            if line.lstrip().startswith(("closest recorded", "first difference"))
        ]
        unanswered = cassette.__dict__.setdefault("_letta_unanswered", [])
        unanswered.append([clear.splitlines()[0].split(": ", 1)[1], *summary])
        self.args = (f"{clear}\n\n{self.args[0] if self.args else ''}".strip(),)

    __init__._letta = True  # type: ignore[attr-defined]
    exception.__init__ = __init__
