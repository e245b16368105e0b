"""Sans-I/O plans: logic written once as a generator of requests, run sync or async.

A plan yields `Call`s (a letta-client method by its attribute path, and its arguments) and
`Pause`s, and receives each call's result; a failed call is thrown into it as a package
error (see `langchain_letta.errors.letta_errors`), so it can catch, say, a 404. `run` and
`arun` are the only I/O: the same plan serves the sync and the async twin of a method.

```python
def _created(agent_id: str) -> Plan[str]:
    conversation = yield Call("conversations.create", kwargs={"agent_id": agent_id})
    return str(conversation.id)

run(_created(agent_id), client)            # sync
await arun(_created(agent_id), async_client)  # async
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_letta.errors import letta_errors

__all__ = ["Call", "Pause", "Plan", "arun", "run"]

T = TypeVar("T")


@dataclass
class Call:
    """One letta-client call: the attribute path under the client, and its arguments.

    `retry=False` sends it once, whatever the client's `max_retries` (a create that
    timed out may have happened: sending it again would make a second one).
    """

    path: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retry: bool = True


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before the plan goes on."""

    seconds: float


Plan = Generator[Call | Pause, Any, T]
"""A plan that returns a `T`."""


def _method(client: Any, call: Call) -> Any:
    target = client if call.retry else client.with_options(max_retries=0)
    for part in call.path.split("."):
        target = getattr(target, part)
    return target


def run(plan: Plan[T], client: Any, *, reading: str | None = None) -> T:
    """Carry out `plan` with the sync letta-client `client`; return what it returns.

    Args:
        plan: the plan.
        client: the letta-client its calls go to.
        reading: what the answers are, for an answer that cannot be decoded (see
            `letta_errors`).

    """
    try:
        step = next(plan)
        while True:
            if isinstance(step, Pause):
                time.sleep(step.seconds)
                step = plan.send(None)
                continue
            try:
                with letta_errors(reading=reading):
                    result = _method(client, step)(*step.args, **step.kwargs)
            except Exception as error:
                step = plan.throw(error)
            else:
                step = plan.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(plan: Plan[T], client: Any, *, reading: str | None = None) -> T:
    """Async twin of `run` (`client` is an async letta-client)."""
    try:
        step = next(plan)
        while True:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                step = plan.send(None)
                continue
            try:
                with letta_errors(reading=reading):
                    result = await _method(client, step)(*step.args, **step.kwargs)
            except Exception as error:
                step = plan.throw(error)
            else:
                step = plan.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
