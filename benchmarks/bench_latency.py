"""1. Turn latency: ChatLetta.invoke / stream vs the raw letta-client send, interleaved."""

from __future__ import annotations

import time

from langchain_core.runnables import RunnableConfig
from letta_client import Letta

from benchmarks.common import Row, Section, Stat, log, ratio, tagged_conversation, verdict
from langchain_letta import ChatLetta

GOAL = 1.03
PROMPT = "hello there"


def _raw_turn(client: Letta, conversation_id: str) -> float:
    start = time.perf_counter()
    for _ in client.conversations.messages.create(
        conversation_id, messages=[{"role": "user", "content": PROMPT}]
    ):
        pass
    return time.perf_counter() - start


def _raw_first(client: Letta, conversation_id: str) -> tuple[float, float]:
    """Seconds to the first event (a ping) and to the first assistant text event."""
    start = time.perf_counter()
    first = content = 0.0
    stream = client.conversations.messages.create(
        conversation_id, messages=[{"role": "user", "content": PROMPT}]
    )
    with stream:
        for event in stream:
            now = time.perf_counter() - start
            first = first or now
            if not content and getattr(event, "message_type", "") == "assistant_message":
                content = now
    return first, content


def _ours_turn(model: ChatLetta, config: RunnableConfig) -> float:
    start = time.perf_counter()
    model.invoke(PROMPT, config=config)
    return time.perf_counter() - start


def _ours_first(model: ChatLetta, config: RunnableConfig) -> float:
    start = time.perf_counter()
    first = 0.0
    for _ in model.stream(PROMPT, config=config):
        first = first or time.perf_counter() - start
    return first


PROCESS = "sync_memory='process'"
"""The cheaper opt-in arm: blocks read only at a session's first turn here and after a
server-side tool ran here (a warm turn is the send alone). ``sync_memory=<seconds>``
costs the same between its checks."""
GOAL_SLOW = 1.02
"""The default's goal with an LLM that takes 1 s per turn (the realistic case)."""


SLOW = "LLM 1 s/turn"
"""Label of the rows measured on the fake LLM's slow model (1 s per completion)."""


def _slow_pairs(url: str, agent_id: str, repeats: int) -> dict[str, dict[str, list[float]]]:
    """The default arm and the raw SDK on an agent whose LLM takes 1 s per completion."""
    client = Letta(base_url=url, timeout=300)
    model = ChatLetta(agent_id=agent_id, base_url=url)
    config: RunnableConfig = {"configurable": {"session_id": "bench-latency-slow-ours"}}
    raw_conv = tagged_conversation(client, agent_id, "bench-latency-slow-raw")
    _ours_turn(model, config)
    _raw_turn(client, raw_conv)
    turn: dict[str, list[float]] = {"ours": [], "raw": []}
    first: dict[str, list[float]] = {"ours": [], "raw": [], "raw_ping": []}
    for i in range(repeats):
        pairs = [
            (
                lambda: turn["ours"].append(_ours_turn(model, config)),
                lambda: turn["raw"].append(_raw_turn(client, raw_conv)),
            ),
            (
                lambda: first["ours"].append(_ours_first(model, config)),
                lambda: _record_raw_first(client, raw_conv, first),
            ),
        ]
        for ours, raw in pairs:
            for arm in (ours, raw) if i % 2 == 0 else (raw, ours):
                arm()
    log(f"latency at {SLOW}: {repeats} repeats done")
    return {"turn": turn, "first": first}


def run(
    url: str, agent_id: str, repeats: int, slow_agent_id: str | None = None, slow_repeats: int = 0
) -> Section:
    client = Letta(base_url=url, timeout=300)
    model = ChatLetta(agent_id=agent_id, base_url=url)
    always = ChatLetta(agent_id=agent_id, base_url=url, sync_memory="process")
    config: RunnableConfig = {"configurable": {"session_id": "bench-latency-ours"}}
    always_config: RunnableConfig = {"configurable": {"session_id": "bench-latency-process"}}
    raw_conv = tagged_conversation(client, agent_id, "bench-latency-raw")
    for _ in range(2):  # warm: session resolved, model name read, connections open
        _ours_turn(model, config)
        _ours_turn(always, always_config)
        _raw_turn(client, raw_conv)
    turn: dict[str, list[float]] = {"ours": [], "always": [], "raw": []}
    first: dict[str, list[float]] = {"ours": [], "always": [], "raw": [], "raw_ping": []}
    arms = {
        "ours": lambda: turn["ours"].append(_ours_turn(model, config)),
        "always": lambda: turn["always"].append(_ours_turn(always, always_config)),
        "raw": lambda: turn["raw"].append(_raw_turn(client, raw_conv)),
    }
    stream_arms = {
        "ours": lambda: first["ours"].append(_ours_first(model, config)),
        "always": lambda: first["always"].append(_ours_first(always, always_config)),
        "raw": lambda: _record_raw_first(client, raw_conv, first),
    }
    for i in range(repeats):
        for group in (arms, stream_arms):  # interleaved, rotating who goes first
            names = list(group)
            for name in names[i % 3 :] + names[: i % 3]:
                group[name]()
    log(f"latency: {repeats} repeats done")
    slow = _slow_pairs(url, slow_agent_id, slow_repeats) if slow_agent_id else None
    section = Section()
    ms = 1000.0
    side_by_side: list[str] = []
    for key, what, data in (
        ("turn", "invoke turn, warm session", turn),
        ("first", "stream first chunk vs raw first assistant event", first),
    ):
        arms = [
            ("ours", "default ('always'), LLM 0 s", data, None),
            ("always", PROCESS, data, None),
        ]
        if slow is not None:
            arms.insert(1, ("ours", f"default ('always'), {SLOW}", slow[key], GOAL_SLOW))
        for arm, label, measured, goal in arms:
            r = ratio(measured[arm], measured["raw"])
            section.rows.append(
                Row(
                    "1 latency",
                    f"{what}, {label}",
                    Stat(measured[arm]).fmt(ms, " ms"),
                    Stat(measured["raw"]).fmt(ms, " ms"),
                    r.fmt(digits=3),
                    f"<= {goal}" if goal else "-",
                    verdict(r.median, goal) if goal else "info",
                )
            )
        if slow is not None:
            at_zero = ratio(data["ours"], data["raw"]).median
            at_one = ratio(slow[key]["ours"], slow[key]["raw"]).median
            side_by_side.append(f"{what}: {at_zero:.3f} at 0 s, {at_one:.3f} at 1 s")
    if side_by_side:
        section.notes.append(
            "1 latency: overhead ratio (default, ours / raw) with a fake LLM that answers at "
            "once and with one that takes 1 s per completion (the fake's `fake-llm-slow` "
            "model): " + "; ".join(side_by_side) + "."
        )
    extra = Stat([a - b for a, b in zip(turn["ours"], turn["always"], strict=True)]).median
    section.notes.append(
        f"1 latency: the default ('always', exact) costs {extra * ms:.0f} ms (median) more per "
        f"turn than {PROCESS}: the GET /v1/agents/{{id}}?include=agent.blocks it sends before "
        "every turn, so that block edits made by other processes or the API are in the next "
        "turn's prompt. Its goal is set at a realistic LLM latency (1 s per turn); at 0 s the "
        "ratio is reported as info. 'process' reads the blocks only at a session's first turn "
        "in the process and after a turn that ran a server-side tool, so a warm turn is the "
        "send alone, as with the raw SDK."
    )
    section.rows.append(
        Row(
            "1 latency",
            "raw SDK first event (a ping) for reference",
            "-",
            Stat(first["raw_ping"]).fmt(ms, " ms"),
            "-",
            "-",
            "info",
            "ChatLetta yields no chunk for a ping (no content), so its first chunk is "
            "compared with the raw stream's first assistant_message event",
        )
    )
    return section


def _record_raw_first(client: Letta, conversation_id: str, first: dict[str, list[float]]) -> None:
    ping, content = _raw_first(client, conversation_id)
    first["raw_ping"].append(ping)
    first["raw"].append(content)
