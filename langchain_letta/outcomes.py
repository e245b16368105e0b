"""The errors of a turn whose outcome is in doubt, each saying whether the server has it.

A turn's error carries `turn_stored`: `True` (the server has the turn; calling
again attaches to it), `False` (nothing was stored) or `None` (the server could not
be asked). The message says the same in words.
"""

from __future__ import annotations

from typing import Any

import httpx
import letta_client

from langchain_letta.errors import (
    LettaConnectionError,
    LettaConversationBusyError,
    LettaIncompleteStreamError,
    LettaPendingApprovalError,
    LettaRunError,
    LettaTimeoutError,
    classify_conflict,
    translate_error,
)
from langchain_letta.events import GarbledStreamError

__all__ = [
    "busy",
    "held",
    "incomplete",
    "raise_if_failed",
    "raise_if_pending_approval",
    "raise_if_stopped_by_error",
    "still_running",
    "timed_out",
    "unrecovered",
]

_NOWHERE = "http://letta.invalid/"


def raise_if_pending_approval(error: letta_client.ConflictError) -> None:
    """Raise `LettaPendingApprovalError` for a 409 that waiting cannot cure.

    The 409 is classified by `langchain_letta.errors.classify_conflict`; any other
    409 (busy, or one it cannot name) is waited for by the caller, as before.
    """
    if classify_conflict(error) == "pending_approval":
        body = error.body if isinstance(error.body, dict) else {}
        detail = str(body.get("detail") or body.get("message") or error.message)
        raise LettaPendingApprovalError(detail, response=error.response, body=error.body) from error


def stored_in_words(stored: bool | None) -> str:
    """`turn_stored` in words."""
    if stored:
        return "The server has the turn (it was not re-sent); calling again attaches to it."
    if stored is False:
        return "The server does not have the turn; nothing was stored."
    return "The server could not be asked whether it has the turn."


def incomplete(base_url: Any) -> LettaIncompleteStreamError:
    """The failure of a stream that ended before its run's stop reason."""
    return LettaIncompleteStreamError(
        message="The reply stream ended before the run's stop reason.",
        request=httpx.Request("POST", str(base_url)),
    )


def unrecovered(drop: BaseException, stored: bool | None) -> LettaConnectionError:
    """The error for a turn whose stream broke and could not be recovered."""
    error = translate_error(drop)
    message = getattr(error, "message", None) or str(error)
    cls = (
        LettaIncompleteStreamError
        if isinstance(error, (LettaIncompleteStreamError, GarbledStreamError))
        else LettaConnectionError
    )
    result = cls(message=f"{message} {stored_in_words(stored)}", request=_request_of(error))
    result.turn_stored = stored
    return result


def timed_out(timeout: BaseException, stored: bool | None) -> LettaTimeoutError:
    """The error for a turn that timed out."""
    error = LettaTimeoutError(request=_request_of(timeout))
    error.message = f"{error.message} {stored_in_words(stored)}"
    error.args = (error.message,)
    error.turn_stored = stored
    return error


def still_running(run_id: str, waited: float) -> LettaConnectionError:
    """The error for a run that outlived the wait for it (the server has the turn)."""
    error = LettaConnectionError(
        message=f"The run {run_id} was still going after {waited:g} s. {stored_in_words(True)}",
        request=httpx.Request("GET", f"{_NOWHERE}v1/runs/{run_id}"),
    )
    error.turn_stored = True
    return error


def held(waited: float) -> LettaConversationBusyError:
    """The error for a conversation another turn of this process held too long."""
    request = httpx.Request("POST", _NOWHERE)
    return LettaConversationBusyError(
        f"Another turn of this process held the conversation for {waited:g} s; try again later.",
        response=httpx.Response(409, request=request),
        body=None,
    )


def busy(error: letta_client.ConflictError, waited: float) -> LettaConversationBusyError:
    """The error for a conversation the server kept busy (HTTP 409) too long."""
    body = error.body if isinstance(error.body, dict) else {}
    run = f" (held by run {body['run_id']})" if body.get("run_id") else ""
    message = f"The conversation stayed busy{run} for {waited:g} s; try again later."
    return LettaConversationBusyError(message, response=error.response, body=error.body)


def raise_if_failed(run: Any, conversation_id: str) -> None:
    """Raise `LettaRunError` for a run that ended as failed."""
    if run.status != "failed":
        return
    body = {"error_type": "run_failed", "run_id": run.id, "message": str(run.stop_reason)}
    request = httpx.Request("GET", f"{_NOWHERE}v1/runs/{run.id}")
    raise LettaRunError(
        f"The run {run.id} of {conversation_id} failed ({run.stop_reason}).",
        response=httpx.Response(500, request=request),
        body=body,
    )


FAILED_STOPS = frozenset(
    {
        "error",
        "llm_api_error",
        "invalid_llm_response",
        "insufficient_credits",
        "context_window_overflow_in_system_prompt",
    }
)
"""Stop reasons of a run that failed: the stream ends normally, but there is no answer."""


def raise_if_stopped_by_error(stop_reason: str | None, run_id: str | None, where: str) -> None:
    """Raise the typed `LettaRunError` for a stream that ended with a failure's stop reason.

    The server ends such a stream like a finished one (a `stop_reason` event, then
    `[DONE]`), so without this the failure would come back as an empty reply.
    """
    if stop_reason not in FAILED_STOPS:
        return
    message = f"the run {run_id} of {where} ended without an answer"
    body = {"error_type": stop_reason, "run_id": run_id, "message": message}
    request = httpx.Request("POST", f"{_NOWHERE}v1/conversations/{where}/messages")
    response = httpx.Response(200, request=request)
    raise translate_error(letta_client.APIStatusError(message, response=response, body=body))


def _request_of(error: BaseException) -> httpx.Request:
    request = getattr(error, "request", None)
    if isinstance(request, httpx.Request):
        return request
    return httpx.Request("POST", _NOWHERE)
