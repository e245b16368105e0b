"""Error translation: each error is both the langchain-core and the letta-client class."""

from __future__ import annotations

from typing import Any

import httpx
import letta_client
import pytest
from langchain_core import exceptions as lc

from langchain_letta import errors
from langchain_letta.outcomes import raise_if_pending_approval

REQUEST = httpx.Request("POST", "http://letta.invalid/v1/conversations/conv-x/messages")


def status_error(status: int, body: Any) -> letta_client.APIStatusError:
    response = httpx.Response(status, json=body, request=REQUEST)
    return letta_client.APIStatusError("boom", response=response, body=body)


@pytest.mark.parametrize(
    ("status", "ours", "core", "client"),
    [
        (404, errors.LettaNotFoundError, lc.ModelNotFoundError, letta_client.NotFoundError),
        (409, errors.LettaConversationBusyError, lc.ModelError, letta_client.ConflictError),
        (429, errors.LettaRateLimitError, lc.ModelRateLimitError, letta_client.RateLimitError),
        (500, errors.LettaAPIError, lc.ModelAPIError, letta_client.InternalServerError),
        (503, errors.LettaAPIError, lc.ModelAPIError, letta_client.InternalServerError),
        (
            401,
            errors.LettaAuthenticationError,
            lc.ModelAuthenticationError,
            letta_client.AuthenticationError,
        ),
        (
            422,
            errors.LettaUnprocessableError,
            lc.ModelInvalidRequestError,
            letta_client.UnprocessableEntityError,
        ),
    ],
)
def test_status_errors_have_both_parents(status: int, ours: type, core: type, client: type) -> None:
    translated = errors.translate_error(status_error(status, {"detail": "nope"}))

    assert type(translated) is ours
    assert isinstance(translated, core)
    assert isinstance(translated, client)
    assert isinstance(translated, letta_client.APIStatusError)
    assert "nope" in str(translated)
    assert isinstance(translated.__cause__, letta_client.APIStatusError)


@pytest.mark.parametrize(
    ("error_type", "ours", "core"),
    [
        ("llm_error", errors.LettaRunError, lc.ModelAPIError),
        ("internal_error", errors.LettaRunError, lc.ModelAPIError),
        ("llm_rate_limit", errors.LettaRunRateLimitError, lc.ModelRateLimitError),
        ("llm_timeout", errors.LettaRunTimeoutError, lc.ModelTimeoutError),
        (
            "context_window_overflow_in_system_prompt",
            errors.LettaContextOverflowError,
            lc.ContextOverflowError,
        ),
    ],
)
def test_in_stream_errors(error_type: str, ours: type, core: type) -> None:
    body = {"error_type": error_type, "message": "it broke", "detail": "d", "run_id": "run-1"}

    translated = errors.translate_error(status_error(200, body))

    assert type(translated) is ours
    assert isinstance(translated, core)
    assert isinstance(translated, errors.LettaRunError)
    assert isinstance(translated, letta_client.APIStatusError)
    assert translated.error_type == error_type  # type: ignore[attr-defined]
    assert translated.run_id == "run-1"  # type: ignore[attr-defined]
    assert str(translated).startswith(f"{error_type}: it broke")


def test_busy_409_is_retryable_and_names_the_run() -> None:
    body = {
        "detail": "CONFLICT: Another request (run_id=run-9) is being processed",
        "run_id": "run-9",
    }
    error = status_error(409, body)
    raise_if_pending_approval(error)  # busy: no raise, the caller waits

    translated = errors.translate_error(error)

    assert isinstance(translated, errors.LettaConversationBusyError)
    assert translated.is_retryable
    assert translated.run_id == "run-9"


def test_pending_approval_409_is_its_own_type() -> None:
    body = {"detail": "Cannot send a new message: the agent is waiting for approval of a tool call"}

    with pytest.raises(errors.LettaPendingApprovalError) as raised:
        raise_if_pending_approval(status_error(409, body))

    assert isinstance(raised.value, lc.ModelInvalidRequestError)
    assert isinstance(raised.value, letta_client.ConflictError)
    assert not isinstance(raised.value, errors.LettaConversationBusyError)


def test_transport_errors() -> None:
    timeout = errors.translate_error(httpx.ReadTimeout("slow", request=REQUEST))
    dropped = errors.translate_error(httpx.RemoteProtocolError("gone", request=REQUEST))
    refused = errors.translate_error(letta_client.APIConnectionError(request=REQUEST))

    assert isinstance(timeout, lc.ModelTimeoutError)
    assert isinstance(timeout, letta_client.APITimeoutError)
    assert isinstance(dropped, lc.ModelConnectionError)
    assert isinstance(dropped, letta_client.APIConnectionError)
    assert isinstance(refused, errors.LettaConnectionError)


def test_other_errors_pass_through() -> None:
    ours = errors.LettaInputError("bad")
    other = KeyError("x")

    assert errors.translate_error(ours) is ours
    assert errors.translate_error(other) is other


def test_pending_approval_in_stream_is_its_own_type() -> None:
    """Letta 0.16.8 reports it inside the stream (body as measured on the real server)."""
    detail = (
        "CONFLICT: Cannot send a new message: The agent is waiting for approval on a tool "
        "call. Please approve or deny the pending request before continuing."
    )
    body = {
        "message_type": "error_message",
        "run_id": "run-1",
        "error_type": "internal_error",
        "message": detail,
        "detail": detail,
        "seq_id": None,
    }

    translated = errors.translate_error(status_error(200, body))

    assert isinstance(translated, errors.LettaPendingApprovalError)
    assert isinstance(translated, lc.ModelInvalidRequestError)
    assert isinstance(translated, letta_client.ConflictError)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            {"detail": "CONFLICT: Another request is currently being processed", "run_id": "r"},
            "busy",
        ),
        ({"detail": "the agent is waiting for approval of a tool call"}, "pending_approval"),
        ({"detail": "No active runs to cancel"}, "other"),
    ],
)
def test_one_classification_of_409(body: dict[str, str], kind: str) -> None:
    assert errors.classify_conflict(status_error(409, body)) == kind


def test_a_pending_approval_409_translates_to_its_own_type() -> None:
    body = {"detail": "Cannot send a new message: the agent is waiting for approval"}
    translated = errors.translate_error(status_error(409, body))
    assert type(translated) is errors.LettaPendingApprovalError


def test_the_error_boundary_translates_reads_and_cursors() -> None:
    with pytest.raises(errors.LettaNotFoundError), errors.letta_errors():
        raise status_error(404, {"detail": "gone"})
    with pytest.raises(errors.LettaCursorError), errors.letta_errors(cursor="message-1"):
        raise status_error(404, {"detail": "gone"})
    unreadable = pytest.raises(errors.LettaResponseError, match="The answer could not be read")
    with unreadable, errors.letta_errors(reading="The answer"):
        raise ValueError("not JSON")
    with pytest.raises(KeyError), errors.letta_errors():  # not an I/O error: unchanged
        raise KeyError("mine")


def test_every_error_the_package_raises_is_importable_from_the_package() -> None:
    import inspect

    import langchain_letta
    from langchain_letta import errors

    raised = {
        name
        for name, value in inspect.getmembers(errors, inspect.isclass)
        if value.__module__ == errors.__name__ and name.endswith("Error")
    }
    assert raised
    assert raised <= set(langchain_letta.__all__)
    assert all(getattr(langchain_letta, name) is getattr(errors, name) for name in raised)
