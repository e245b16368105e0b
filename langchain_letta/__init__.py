"""LangChain and LangGraph integration for stateful Letta agents."""

from importlib.metadata import version
from typing import TYPE_CHECKING

from langchain_letta.chat_history import LettaChatMessageHistory
from langchain_letta.chat_models import ChatLetta
from langchain_letta.errors import (
    LettaAPIError,
    LettaAuthenticationError,
    LettaBadRequestError,
    LettaConnectionError,
    LettaContextOverflowError,
    LettaConversationBusyError,
    LettaConversationIdError,
    LettaCursorError,
    LettaForeignConversationError,
    LettaHistoryWriteError,
    LettaIncompleteStreamError,
    LettaInputError,
    LettaInputTooLargeError,
    LettaNotFoundError,
    LettaPendingApprovalError,
    LettaPermissionDeniedError,
    LettaRateLimitError,
    LettaResponseError,
    LettaRunError,
    LettaRunRateLimitError,
    LettaRunTimeoutError,
    LettaSessionStoreError,
    LettaStructuredOutputError,
    LettaTimeoutError,
    LettaUnprocessableError,
)
from langchain_letta.sessions import InMemorySessionStore, JsonFileSessionStore, SessionStore

__version__ = version("langchain-letta")
"""The installed distribution's version: ``pyproject.toml`` is its one source."""

if TYPE_CHECKING:
    from langchain_letta.store import LettaStore


def __getattr__(name: str) -> object:
    """``LettaStore`` is imported on first use: it needs the optional ``langgraph``."""
    if name == "LettaStore":
        try:
            from langchain_letta.store import LettaStore
        except ImportError as error:
            raise ImportError(
                "LettaStore needs langgraph: pip install 'langchain-letta[langgraph]'"
            ) from error
        return LettaStore
    raise AttributeError(f"module 'langchain_letta' has no attribute {name!r}")


__all__ = [
    "ChatLetta",
    "InMemorySessionStore",
    "JsonFileSessionStore",
    "LettaAPIError",
    "LettaAuthenticationError",
    "LettaBadRequestError",
    "LettaChatMessageHistory",
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
    "LettaStore",
    "LettaStructuredOutputError",
    "LettaTimeoutError",
    "LettaUnprocessableError",
    "SessionStore",
    "__version__",
]
