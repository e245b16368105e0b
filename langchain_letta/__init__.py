"""LangChain and LangGraph integration for stateful Letta agents."""

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
]
