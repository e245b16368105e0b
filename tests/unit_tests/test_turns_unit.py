"""A turn's identity, the turns in doubt, a retry meeting its turn, the conversation locks
and size estimates."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import letta_client
import pytest

from langchain_letta import LettaConnectionError, state
from langchain_letta.locks import ConversationLocks, Holder, LockTimeoutError
from langchain_letta.progress import StreamProgress
from langchain_letta.sizes import IMAGE_TOKENS, estimate_payload_tokens, estimate_text_tokens
from langchain_letta.steps import FindRun, MetItsTurn, Recover, Send, TurnPlan, advance, turn_steps
from langchain_letta.turns import DoubtfulTurn, DoubtfulTurns, keyed_otids, new_otids

HI = [{"role": "user", "content": "hi"}]


def test_every_call_gets_new_otids_and_a_key_derives_the_same_ones() -> None:
    first, second = new_otids(HI), new_otids(HI)

    assert first[0]["otid"] != second[0]["otid"]
    assert keyed_otids(HI, "order-7") == keyed_otids(HI, "order-7")
    assert keyed_otids(HI, "order-7") != keyed_otids(HI, "order-8")


def test_a_turn_in_doubt_is_taken_over_once_by_the_same_content_in_the_same_conversation() -> None:
    turns = DoubtfulTurns(10_000)
    sent = new_otids(HI)
    turns.record(DoubtfulTurn("conv-a", sent, "run-1", time.monotonic()))

    assert turns.take("conv-b", HI) is None
    assert turns.take("conv-a", [{"role": "user", "content": "other"}]) is None
    taken = turns.take("conv-a", HI)
    assert taken is not None
    assert taken.otids == [sent[0]["otid"]]
    assert taken.run_id == "run-1"
    assert turns.take("conv-a", HI) is None  # a later call with the same text is new
    assert len(turns) == 0


def test_turns_in_doubt_older_than_letta_remembers_are_dropped() -> None:
    turns = DoubtfulTurns(10_000)
    turns.record(DoubtfulTurn("conv-a", new_otids(HI), None, time.monotonic() - 4 * 3600))

    assert turns.take("conv-a", HI) is None


def test_a_lock_held_by_the_same_thread_is_taken_over_and_the_holder_abandoned() -> None:
    locks = ConversationLocks()
    abandoned: list[str] = []
    old = Holder(abandon=lambda: abandoned.append("old"))
    slot = locks.acquire("conv-a", old, timeout=1)

    new = Holder()
    again = locks.acquire("conv-a", new, timeout=1)

    assert abandoned == ["old"]
    assert old.abandoned
    locks.release(slot, old)  # the abandoned holder no longer frees the slot
    assert again.holder is new
    locks.release(again, new)
    assert again.holder is None


def test_a_lock_held_by_another_thread_is_waited_for_within_the_timeout() -> None:
    locks = ConversationLocks()
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        holder = Holder()
        slot = locks.acquire("conv-a", holder, timeout=1)
        held.set()
        done.wait(5)
        locks.release(slot, holder)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    with pytest.raises(LockTimeoutError):
        locks.acquire("conv-a", Holder(), timeout=0.05)
    done.set()
    thread.join()
    holder = Holder()
    locks.release(locks.acquire("conv-a", holder, timeout=1), holder)


def test_estimates_count_images_flat_and_non_ascii_text_per_character() -> None:
    image = {"type": "image", "source": {"type": "base64", "data": "A" * 800_000}}

    assert estimate_text_tokens("abcd" * 10) == 10
    assert estimate_text_tokens("漢字") == 2
    assert estimate_payload_tokens([{"role": "user", "content": [image]}]) == IMAGE_TOKENS + 4


def _conflict(run_id: str | None) -> letta_client.ConflictError:
    request = httpx.Request("POST", "http://letta.invalid/v1/conversations/c/messages")
    body = {"detail": "busy", "run_id": run_id} if run_id else {"detail": "busy"}
    return letta_client.ConflictError(
        "busy", response=httpx.Response(409, request=request), body=body
    )


def test_a_retry_whose_send_meets_a_run_may_have_met_its_own_turn() -> None:
    sent = new_otids(HI)
    retried = DoubtfulTurn("conv-1", sent, None, time.monotonic())
    retry = TurnPlan("conv-1", sent, StreamProgress("agent-1"), retry_of=retried)
    fresh = TurnPlan("conv-1", new_otids(HI), StreamProgress("agent-1"))
    resent = TurnPlan("conv-1", new_otids(HI), StreamProgress("agent-1"), retry_of=retried)

    assert retry.run_maybe_retried(_conflict("run-1")) == "run-1"
    assert retry.run_maybe_retried(_conflict("run-1")) is None  # looked at once: busy now
    assert retry.run_maybe_retried(_conflict("run-2")) == "run-2"
    assert retry.run_maybe_retried(_conflict(None)) is None
    assert fresh.run_maybe_retried(_conflict("run-1")) is None
    assert resent.run_maybe_retried(_conflict("run-1")) is None  # its own new otids


def test_a_send_that_met_its_turn_attaches_to_that_run() -> None:
    sent = new_otids(HI)
    retried = DoubtfulTurn("conv-1", sent, None, time.monotonic())
    plan = TurnPlan("conv-1", sent, StreamProgress("agent-1"), retry_of=retried)
    steps = turn_steps(plan)
    assert isinstance(next(steps), FindRun)
    assert isinstance(steps.send(None), Send)  # not found: sent

    step = steps.send(MetItsTurn("run-1"))

    assert step == Recover("run-1")
    assert plan.progress.run_id == "run-1"
    assert advance(steps, None) is None


class _Refused:
    """letta-client's streaming create whose send fails with `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __enter__(self) -> None:
        raise self.error


class _RefusingConversations:
    """Just what `TurnStreams` reads to send, every send failing with `make()`."""

    busy_timeout = 1.0

    def __init__(self, make: Any) -> None:
        from types import SimpleNamespace

        def create(conversation_id: str, messages: Any, **options: Any) -> _Refused:
            return _Refused(make())

        self.send_client = SimpleNamespace(
            conversations=SimpleNamespace(
                messages=SimpleNamespace(with_streaming_response=SimpleNamespace(create=create))
            ),
            runs=SimpleNamespace(list=lambda *a, **k: []),
        )
        self.client = SimpleNamespace(base_url="http://letta.invalid/")
        self.listing = SimpleNamespace(newest=lambda *a, **k: [])

    def sync_memory(self, *args: Any, **kwargs: Any) -> bool:
        return False


@pytest.mark.parametrize(
    ("cause", "in_doubt"),
    [
        (httpx.ConnectError("connection refused"), 0),
        (httpx.ConnectTimeout("no connection in time"), 0),
        (httpx.PoolTimeout("no free connection"), 0),
        (httpx.ReadError("cut after the request went out"), 1),
    ],
)
def test_a_send_that_never_left_is_not_kept_in_doubt(cause: Exception, in_doubt: int) -> None:
    from langchain_letta.turn_stream import TurnStreams, identify

    state.reset()  # counted below: what a test before this one left in doubt is not this send's
    request = httpx.Request("POST", "http://letta.invalid/v1/conversations/conv-1/messages")

    def refused() -> BaseException:
        error = letta_client.APIConnectionError(request=request)
        error.__cause__ = cause
        return error

    messages, retry_of = identify("conv-1", [{"role": "user", "content": "hi"}], None)
    streams = TurnStreams(_RefusingConversations(refused))  # type: ignore[arg-type]
    with pytest.raises(LettaConnectionError):
        list(streams.stream_turn("conv-1", messages, agent_id="agent-1", retry_of=retry_of))

    assert len(state.DOUBTFUL_TURNS) == in_doubt  # a retry then sends anew, at once
