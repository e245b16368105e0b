"""Which conversation a call names, carried from the runnable config down to the turn.

LangChain hands `_stream` the messages and the call's keyword arguments, not the
config. `RoutedChatModel` overrides the public entry points (`invoke`, `stream`,
their async twins and the event streams) to copy the config's conversation choice
into internal keyword arguments, which the turn reads (`langchain_letta.calls`)
and tracing never sees.

First match wins: `configurable.conversation_id` (a `conv-...` id),
`configurable.session_id`, `configurable.thread_id` (LangGraph's key, as a
session key); then a conversation or session fixed on the model; then the
conversation of the newest Letta message in the input; else a new conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig, ensure_config

from langchain_letta.locks import current_owner
from langchain_letta.sessions import check_conversation_id, check_session_id

__all__ = [
    "INTERNAL_KWARGS",
    "ROUTE_KEYS",
    "RoutedChatModel",
    "ambient_route",
    "check_fixed_route",
    "route_in",
]

ROUTE_KEYS = ("conversation_id", "session_id", "thread_id")
INTERNAL_KWARGS = frozenset(
    {
        "letta_route",
        "letta_history",
        "letta_structured",
        "letta_owner",
        "letta_forced_tools",
        "idempotency_key",
        *ROUTE_KEYS,
    }
)
"""Keyword arguments the package passes itself; kept out of the invocation params."""


class RoutedChatModel(BaseChatModel):
    """A chat model whose calls carry the config's conversation choice to `_stream`."""

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Run one turn; the config's `configurable` selects the conversation."""
        config = ensure_config(config)
        return super().invoke(input, config, stop=stop, **route(config, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async twin of `invoke`."""
        config = ensure_config(config)
        return await super().ainvoke(input, config, stop=stop, **route(config, kwargs))

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream one turn as it arrives; the config selects the conversation."""
        config = ensure_config(config)
        yield from super().stream(input, config, stop=stop, **route(config, kwargs))

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of `stream`."""
        config = ensure_config(config)
        async for chunk in super().astream(input, config, stop=stop, **route(config, kwargs)):
            yield chunk

    def stream_events(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """LangChain's event stream of one turn; the config selects the conversation."""
        config = ensure_config(config)
        routed = route(config, kwargs)
        return super().stream_events(input, config, version=version, stop=stop, **routed)

    def astream_events(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        **kwargs: Any,
    ) -> Any:
        """Async twin of `stream_events`."""
        config = ensure_config(config)
        return super().astream_events(input, config, version=version, **route(config, kwargs))

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The call's parameters as tracing and caching see them, without routing internals."""
        public = {key: value for key, value in kwargs.items() if key not in INTERNAL_KWARGS}
        return super()._get_invocation_params(stop=stop, **public)


def route(config: RunnableConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments that carry the config's conversation choice down to `_stream`."""
    configurable = config.get("configurable") or {}
    routed = dict(kwargs)
    routed.setdefault("letta_owner", current_owner())  # the thread or task the call came from
    history = configurable.get("message_history")
    if hasattr(
        history, "repeat_last_read"
    ):  # a LettaChatMessageHistory under RunnableWithMessageHistory
        routed["letta_history"] = history
    chosen = route_in(configurable)
    if chosen is not None:
        routed["letta_route"] = chosen
    if configurable.get("idempotency_key") is not None:
        routed.setdefault("idempotency_key", configurable["idempotency_key"])
    return routed


def route_in(values: dict[str, Any]) -> tuple[str, str] | None:
    """The first conversation choice in `values` (a `configurable` or call kwargs)."""
    for key in ROUTE_KEYS:
        value = values.get(key)
        if value is not None:  # checked here, before any request
            if key == "conversation_id":
                check_conversation_id(value, where="configurable.conversation_id")
            else:
                check_session_id(value)
            return (key, value)
    return None


def check_fixed_route(conversation_id: object, session_id: object) -> None:
    """Check the conversation id and session key fixed on a model, when given."""
    if conversation_id is not None:
        check_conversation_id(conversation_id)
    if session_id is not None:
        check_session_id(session_id)


def ambient_route() -> tuple[str, str] | None:
    """The conversation choice of the runnable this call runs inside (a graph node, a chain)."""
    return route_in(ensure_config().get("configurable") or {})
