"""LangChain and LangGraph integration for stateful Letta agents."""

from importlib.metadata import version

from langchain_letta.chat_history import LettaChatMessageHistory
from langchain_letta.chat_models import ChatLetta
from langchain_letta.errors import (
    LettaAPIError,
    LettaConnectionError,
    LettaContextOverflowError,
    LettaConversationBusyError,
    LettaHistoryWriteError,
    LettaIncompleteStreamError,
    LettaInputError,
    LettaInputTooLargeError,
    LettaNotFoundError,
    LettaPendingApprovalError,
    LettaRateLimitError,
    LettaRunError,
    LettaStructuredOutputError,
    LettaTimeoutError,
)
from langchain_letta.sessions import InMemorySessionStore, JsonFileSessionStore, SessionStore

__version__ = version("langchain-letta")
"""The installed distribution's version: ``pyproject.toml`` is its one source."""

__all__ = [
    "ChatLetta",
    "InMemorySessionStore",
    "JsonFileSessionStore",
    "LettaAPIError",
    "LettaChatMessageHistory",
    "LettaConnectionError",
    "LettaContextOverflowError",
    "LettaConversationBusyError",
    "LettaHistoryWriteError",
    "LettaIncompleteStreamError",
    "LettaInputError",
    "LettaInputTooLargeError",
    "LettaNotFoundError",
    "LettaPendingApprovalError",
    "LettaRateLimitError",
    "LettaRunError",
    "LettaStructuredOutputError",
    "LettaTimeoutError",
    "SessionStore",
    "__version__",
]
