"""Exception types of langchain-letta and the translation from letta-client errors.

Every HTTP error type inherits both the matching `langchain_core.exceptions` class
and the matching `letta_client` class, so code that catches either keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
import letta_client
from langchain_core import exceptions as lc

__all__ = [
    "Conflict",
    "LettaAPIError",
    "LettaAuthenticationError",
    "LettaBadRequestError",
    "LettaConnectionError",
    "LettaContextOverflowError",
    "LettaConversationBusyError",
    "LettaConversationIdError",
    "LettaCursorError",
    "LettaForeignConversationError",
    "LettaHistoryWriteError",
    "LettaIncompleteStreamError",
    "LettaInputError",
    "LettaInputTooLargeError",
    "LettaNotFoundError",
    "LettaPendingApprovalError",
    "LettaPermissionDeniedError",
    "LettaRateLimitError",
    "LettaResponseError",
    "LettaRunError",
    "LettaRunRateLimitError",
    "LettaRunTimeoutError",
    "LettaSessionStoreError",
    "LettaStructuredOutputError",
    "LettaTimeoutError",
    "LettaUnprocessableError",
    "classify_conflict",
    "gone",
    "letta_errors",
    "translate_error",
]


class LettaBadRequestError(lc.ModelInvalidRequestError, letta_client.BadRequestError):
    """The server rejected the request as invalid (HTTP 400)."""


class LettaUnprocessableError(lc.ModelInvalidRequestError, letta_client.UnprocessableEntityError):
    """The server could not validate the request (HTTP 422), e.g. a malformed id."""


class LettaAuthenticationError(lc.ModelAuthenticationError, letta_client.AuthenticationError):
    """The API key was refused (HTTP 401)."""


class LettaPermissionDeniedError(lc.ModelPermissionDeniedError, letta_client.PermissionDeniedError):
    """The API key may not access this resource (HTTP 403)."""


class LettaNotFoundError(lc.ModelNotFoundError, letta_client.NotFoundError):
    """The agent or conversation does not exist, or was deleted (HTTP 404)."""


class LettaConversationBusyError(lc.ModelError, letta_client.ConflictError):
    """The conversation stayed busy with another run for longer than the wait allowed.

    Retryable: the other run will finish. `run_id` names the run that holds the
    conversation, when the server said so.
    """

    is_retryable = True

    @property
    def run_id(self) -> str | None:
        """The id of the run that holds the conversation."""
        body = self.body
        return body.get("run_id") if isinstance(body, dict) else None


class LettaRateLimitError(lc.ModelRateLimitError, letta_client.RateLimitError):
    """A rate limit was hit (HTTP 429)."""


class LettaAPIError(lc.ModelAPIError, letta_client.InternalServerError):
    """The server failed (HTTP 5xx)."""


class LettaConnectionError(lc.ModelConnectionError, letta_client.APIConnectionError):
    """The server could not be reached, or the connection broke mid-turn.

    `turn_stored` says what the server holds of the turn: `True` when it has the
    turn (stored, or its run still going: a retry attaches to it instead of sending it
    again), `False` when it has none of it (a retry sends it), `None` only when the
    server could not be asked.
    """

    turn_stored: bool | None = None


class LettaIncompleteStreamError(LettaConnectionError):
    """The reply stream ended before the run's stop reason, and the run could not be found.

    Raised for a truncated or garbled answer (an HTML page, broken JSON, an empty body).
    `turn_stored` says whether the server holds the turn.
    """


class LettaTimeoutError(lc.ModelTimeoutError, letta_client.APITimeoutError):
    """The request timed out.

    `turn_stored` is as for `LettaConnectionError`: after a turn timed out,
    calling again with the same input attaches to the run the server is still doing
    (or returns what it stored) instead of sending the turn twice.
    """

    turn_stored: bool | None = None


class LettaRunError(lc.ModelAPIError, letta_client.APIStatusError):
    """The agent's run failed after the stream had started (Letta's in-stream error).

    `error_type` is Letta's classification (`llm_error`, `llm_timeout`,
    `internal_error`, ...) and `run_id` names the failed run.
    """

    @property
    def error_type(self) -> str | None:
        """Letta's `error_type` for the failure."""
        body = self.body
        return body.get("error_type") if isinstance(body, dict) else None

    @property
    def run_id(self) -> str | None:
        """The id of the run that failed."""
        body = self.body
        return body.get("run_id") if isinstance(body, dict) else None


class LettaRunRateLimitError(lc.ModelRateLimitError, LettaRunError):
    """The agent's LLM was rate limited during the run."""


class LettaRunTimeoutError(lc.ModelTimeoutError, LettaRunError):
    """The agent's LLM timed out during the run."""


class LettaContextOverflowError(lc.ContextOverflowError, LettaRunError):
    """The input does not fit the agent's context window."""


class LettaInputError(lc.ModelInvalidRequestError, ValueError):
    """The input cannot be sent to Letta; raised before anything is sent or stored."""


class LettaInputTooLargeError(LettaInputError, lc.ContextOverflowError):
    """The input cannot fit the agent's context window; raised before anything is sent."""


class LettaPendingApprovalError(lc.ModelInvalidRequestError, letta_client.ConflictError):
    """The conversation waits for the result of a client-side tool call.

    HTTP 409, or (Letta 0.16.8 on a streaming send) an in-stream `CONFLICT` error.
    Send the `ToolMessage` answering the pending `tool_calls` first.
    """


class LettaStructuredOutputError(lc.OutputParserException):
    """The agent answered a structured-output call without the structured answer.

    `llm_output` holds the agent's reply text.
    """


class LettaHistoryWriteError(lc.LangChainException, NotImplementedError):
    """A message cannot be stored in a Letta conversation without running the agent.

    Letta stores a turn only by running the agent on it; a message that Letta did not
    already store (and that is not part of a turn Letta answered) is refused with this
    error instead of being dropped silently.
    """


class LettaConversationIdError(LettaInputError):
    """A value given as a conversation id is not a Letta conversation id (`conv-...`).

    Often an application's own key (LangChain's `RunnableWithMessageHistory` examples
    key their histories by `conversation_id="1"`): pass such keys as `session_id`.
    """


class LettaForeignConversationError(LettaInputError):
    """The conversation belongs to another agent than the one this object talks to."""


class LettaCursorError(LettaInputError):
    """A paging cursor is malformed, unknown, or names a message of another conversation."""


class LettaSessionStoreError(lc.LangChainException, RuntimeError):
    """A session store cannot be read (for example a corrupt session file)."""


class LettaResponseError(lc.ModelAPIError):
    """The server's answer does not have the shape Letta's API documents."""


_BY_STATUS: dict[int, type[letta_client.APIStatusError]] = {
    400: LettaBadRequestError,
    401: LettaAuthenticationError,
    403: LettaPermissionDeniedError,
    404: LettaNotFoundError,
    422: LettaUnprocessableError,
    429: LettaRateLimitError,
}

_BY_CONFLICT: dict[Conflict, type[letta_client.APIStatusError]] = {
    "busy": LettaConversationBusyError,
    "pending_approval": LettaPendingApprovalError,
    "other": LettaConversationBusyError,  # unknown: reported as before
}

_BY_RUN_ERROR_TYPE: dict[str, type[LettaRunError]] = {
    "llm_rate_limit": LettaRunRateLimitError,
    "llm_timeout": LettaRunTimeoutError,
    "context_window_overflow_in_system_prompt": LettaContextOverflowError,
    "context_window_exceeded": LettaContextOverflowError,
}


def _status_error_type(error: letta_client.APIStatusError) -> type[letta_client.APIStatusError]:
    if error.status_code == 200:  # the SDK's shape for an SSE ``event: error``
        if "conflict" in _conflict_text(error) and classify_conflict(error) == "pending_approval":
            return LettaPendingApprovalError  # 0.16.8 streams this 409 as an in-stream error
        body = error.body if isinstance(error.body, dict) else {}
        return _BY_RUN_ERROR_TYPE.get(str(body.get("error_type")), LettaRunError)
    if error.status_code >= 500:
        return LettaAPIError
    if error.status_code == 409:
        return _BY_CONFLICT[classify_conflict(error)]
    return _BY_STATUS.get(error.status_code, LettaBadRequestError)


Conflict = Literal["busy", "pending_approval", "other"]
"""What a Letta 409 means (see `classify_conflict`)."""


def classify_conflict(error: letta_client.APIStatusError) -> Conflict:
    """What a Letta 409 means, and so whether waiting can cure it.

    The one classification of 409 in the package; the busy-wait of a send uses it too.

    - `"pending_approval"`: the conversation waits for a tool's result or an approval
      decision. Waiting cannot cure it: answer the call (`LettaPendingApprovalError`).
    - `"busy"`: another run holds the conversation (Letta's detail says "currently being
      processed" and names its `run_id`). Waiting cures it (`LettaConversationBusyError`,
      retryable).
    - `"other"`: any other conflict, such as nothing to cancel. Waiting cannot cure it,
      so a send does not wait for it; `translate_error` still reports it as
      `LettaConversationBusyError`, as it always has.

    Args:
        error: a letta-client error with status 409 (or 0.16.8's in-stream `CONFLICT`).

    """
    body = error.body if isinstance(error.body, dict) else {}
    text = _conflict_text(error)
    if "approval" in text:
        return "pending_approval"
    if body.get("run_id") or "being processed" in text or "busy" in text:
        return "busy"
    return "other"


def _conflict_text(error: letta_client.APIStatusError) -> str:
    """What the server said about an error (its detail and message), lower case."""
    body = error.body if isinstance(error.body, dict) else {}
    said = [str(body[key]) for key in ("detail", "message") if body.get(key)]
    return " ".join(said or [error.message]).lower()


def translate_error(error: BaseException) -> BaseException:
    """Return the langchain-letta exception for a letta-client or httpx error.

    Errors that are already ours, or that are not HTTP errors, are returned unchanged.
    """
    if isinstance(error, lc.LangChainException):
        return error
    translated: BaseException
    if isinstance(error, letta_client.APIStatusError):
        cls = _status_error_type(error)
        translated = cls(_message(error), response=error.response, body=error.body)
    elif isinstance(error, letta_client.APITimeoutError):
        translated = LettaTimeoutError(request=error.request)
    elif isinstance(error, letta_client.APIConnectionError):
        translated = LettaConnectionError(message=error.message, request=error.request)
    elif isinstance(error, httpx.TimeoutException):
        translated = LettaTimeoutError(request=_request_of(error))
    elif isinstance(error, httpx.TransportError):
        translated = LettaConnectionError(message=str(error), request=_request_of(error))
    else:
        return error
    translated.__cause__ = error
    return translated


@contextmanager
def letta_errors(*, reading: str | None = None, cursor: str | None = None) -> Iterator[None]:
    """The error boundary of one I/O call: every failure inside leaves as a package error.

    letta-client and httpx errors become their langchain-letta types (`translate_error`);
    other exceptions pass unchanged. Use it around a request and the reading of its answer,
    in sync and async code alike:

    ```python
    with letta_errors(reading="The server's answer"):
        conversation = client.conversations.retrieve(conversation_id)
    ```

    Args:
        reading: what the answer is, for an answer that cannot be decoded (invalid JSON,
            a shape letta-client refuses): it then raises `LettaResponseError` saying
            "<reading> could not be read".
        cursor: the paging cursor of the request; a 404 then means the cursor names no
            message the server has, and raises `LettaCursorError`.

    """
    try:
        yield
    except Exception as error:
        translated = translate_error(error)
        if cursor and isinstance(translated, LettaNotFoundError):
            raise LettaCursorError(
                f"The cursor {cursor} names no message the server has (or the conversation "
                "was deleted)."
            ) from error
        if reading and isinstance(
            error, (ValueError, TypeError, letta_client.APIResponseValidationError)
        ):
            raise LettaResponseError(f"{reading} could not be read: {error}") from error
        if translated is error:
            raise
        raise translated from error


def gone(message: str) -> LettaNotFoundError:
    """The error for a conversation found gone without a 404 of its own to report."""
    response = httpx.Response(404, request=httpx.Request("GET", "http://letta.invalid/"))
    return LettaNotFoundError(message, response=response, body=None)


def _message(error: letta_client.APIStatusError) -> str:
    body: Any = error.body
    if isinstance(body, dict):
        detail = body.get("message") or body.get("detail")
        if detail:
            prefix = f"{body['error_type']}: " if body.get("error_type") else ""
            return f"{prefix}{detail}"
    return error.message


def _request_of(error: httpx.HTTPError) -> httpx.Request:
    try:
        return error.request
    except RuntimeError:  # httpx raises when no request is attached
        return httpx.Request("POST", "http://letta.invalid/")
