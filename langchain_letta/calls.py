"""One call's request, checked before anything is sent: where it goes and what it sends.

`prepare_call` reads the internal keyword arguments `langchain_letta.routing` put
in, checks them, and converts the input to Letta payloads once: the same payloads
are measured against the context window and, usually, sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage

from langchain_letta.errors import LettaInputError
from langchain_letta.memory import check_mode
from langchain_letta.messages import to_letta_messages
from langchain_letta.notices import say_ignored
from langchain_letta.routing import ROUTE_KEYS, ambient_route, route_in

if TYPE_CHECKING:
    from langchain_letta.chat_models import ChatLetta

__all__ = ["Call", "check_max_steps", "prepare_call"]


@dataclass
class Call:
    """What one call asks of a turn, checked: where it goes and how it is sent."""

    route: tuple[str, str] | None
    """The conversation choice, as `(key, value)`; `None`: the model's own."""
    history: Any
    """The `LettaChatMessageHistory` the call runs under, if any."""
    key: str | None
    """`configurable.idempotency_key`: names the call across processes."""
    options: dict[str, Any]
    """Keyword arguments of the send (see `send_options`)."""
    model: str | None
    """The model this call runs on instead of the model's (`model=` of the call)."""
    structured: str | None
    """The tool name of a structured-output call."""
    anchor: BaseMessage | None
    """The newest input message Letta stored; what comes after it is sent."""
    unsent: list[BaseMessage]
    """The input messages after `anchor`."""
    payloads: list[dict[str, Any]]
    """`unsent` as Letta payloads (following `anchor`), without `otid` values."""
    owner: object | None
    """The thread or task the public call came from."""


def prepare_call(
    messages: Sequence[BaseMessage],
    kwargs: dict[str, Any],
    model: ChatLetta,
    stop: list[str] | None = None,
) -> Call:
    """Everything a turn needs from the call, checked before any request.

    Arguments Letta cannot honour (`stop`, a per-call `temperature` or
    `max_tokens`) are said once in the log (`langchain_letta.notices`).

    Raises:
        LettaInputError: for a bad `idempotency_key` or `max_steps`, or input with
            nothing to send.

    """
    kwargs = dict(kwargs)
    route = kwargs.pop("letta_route", None) or route_in(kwargs) or ambient_route()
    history = kwargs.pop("letta_history", None)
    key = kwargs.pop("idempotency_key", None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise LettaInputError("idempotency_key must be a non-empty string.")
    structured = kwargs.pop("letta_structured", None)
    owner = kwargs.pop("letta_owner", None)
    for name in ROUTE_KEYS:
        kwargs.pop(name, None)
    say_ignored({**kwargs, "stop": stop}, "in a call")
    anchor, unsent, payloads = _check_input(messages)
    options = send_options(kwargs, model)
    return Call(
        route,
        history,
        key,
        options,
        kwargs.get("model"),
        structured,
        anchor,
        unsent,
        payloads,
        owner,
    )


def send_options(kwargs: dict[str, Any], model: ChatLetta) -> dict[str, Any]:
    """The send's keyword arguments: the call's, else the model's.

    A model named by the call (`model=`) or at init (`ChatLetta(model=...)`) is sent
    as Letta's `override_model`: the turn runs on it instead of the agent's own.
    """
    options: dict[str, Any] = {"stream_tokens": kwargs.get("stream_tokens", model.stream_tokens)}
    max_steps = check_max_steps(kwargs.get("max_steps", model.max_steps))
    if max_steps is not None:
        options["max_steps"] = max_steps
    if kwargs.get("client_tools"):
        options["client_tools"] = kwargs["client_tools"]
    override = kwargs.get("model") or model.model_name
    if override:
        options["override_model"] = override
    if kwargs.get("background", model.background):
        options["background"] = True
    options["agent_id"] = model.agent_id
    options["memory"] = check_mode(kwargs.get("sync_memory", model.sync_memory))
    return options


def check_max_steps(max_steps: object) -> int | None:
    """`max_steps` if it is `None` or a whole number of at least 1, else `LettaInputError`."""
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise LettaInputError(f"max_steps must be a whole number of at least 1; got {max_steps!r}.")
    return max_steps


def _check_input(
    messages: Sequence[BaseMessage],
) -> tuple[BaseMessage | None, list[BaseMessage], list[dict[str, Any]]]:
    """The newest stored message, the messages after it and their payloads, checked.

    Only what will be sent is validated: a stored message (a turn that ended on a tool
    step, say) is an anchor, whatever its content. Nothing is sent on error.
    """
    if not messages:
        raise LettaInputError("The input has no message to send.")
    anchor: BaseMessage | None = None
    unsent = list(messages)
    for position in range(len(messages) - 1, -1, -1):
        if str(messages[position].id or "").startswith("message-"):
            anchor, unsent = messages[position], list(messages[position + 1 :])
            break
    payloads = to_letta_messages(unsent, anchor=anchor)
    if not any(message.type in {"human", "tool"} for message in unsent):
        kinds = ", ".join(sorted({message.type for message in unsent}))
        raise LettaInputError(
            f"The input has no human or tool message to answer (only {kinds}); nothing was sent."
        )
    return anchor, unsent, payloads
