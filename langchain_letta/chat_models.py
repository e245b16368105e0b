"""``ChatLetta``: a LangChain chat model over a Letta agent's conversations."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from letta_client import AsyncLetta, Letta
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from langchain_letta.connection import make_clients, resolve_api_key, resolve_base_url
from langchain_letta.conversation import Conversations
from langchain_letta.errors import (
    LettaInputError,
    LettaInputTooLargeError,
    LettaNotFoundError,
    translate_error,
)
from langchain_letta.memory import LEDGER, SyncMemory, check_mode
from langchain_letta.messages import (
    TurnChunker,
    anchor_conversation,
    client_return_ids,
    strip_indexes,
    to_letta_messages,
    unsent_tail,
    with_otids,
)
from langchain_letta.sessions import SessionResolver, SessionStore, check_session_id

__all__ = ["ChatLetta"]

_ROUTE_KEYS = ("conversation_id", "session_id", "thread_id")
_LAST_SEEN: dict[str, str] = {}
_LAST_SEEN_LOCK = threading.Lock()


class ChatLetta(BaseChatModel):
    """Chat with a stateful Letta agent, one Letta conversation per session.

    Letta keeps each thread and the agent's memory on the server. ``ChatLetta`` talks to
    one agent through Letta's Conversations API: every session key gets its own
    conversation (created on first use, found again after a restart, from any process),
    and all sessions share the agent's memory blocks and tools. Only the messages Letta
    has not stored yet are sent, so the model combines exactly with
    ``RunnableWithMessageHistory`` and ``LettaChatMessageHistory``.

    Setup:
        Install ``langchain-letta`` and point it at a Letta server:

        .. code-block:: bash

            pip install -U langchain-letta
            export LETTA_BASE_URL="http://127.0.0.1:8283"   # default: Letta Cloud
            export LETTA_API_KEY="..."                      # not needed for a local server

    Key init args:
        agent_id: str
            The Letta agent (``agent-...``) to talk to.
        stream_tokens: bool
            Stream the reply token by token (default: one chunk per Letta step).
        max_steps: int | None
            Upper bound on agent steps per turn.
        busy_timeout: float
            Seconds to wait for a conversation another run holds (default 60).
        sync_memory: "auto" | "always" | "never"
            When to check the agent's shared memory blocks and rebuild a session's
            prompt if they changed: ``"auto"`` (default) at a session's first turn in
            this process and after any turn that ran a server-side tool (how the agent
            edits memory), ``"always"`` before every turn (also sees edits made by
            other processes or the API; one light request), ``"never"``.
        background: bool
            Run turns as Letta background runs, so a dropped stream resumes where it
            stopped instead of failing (needs Redis on the server; default ``False``).

    Client args:
        base_url: str | None
            Server URL; default ``$LETTA_BASE_URL``, else Letta Cloud.
        api_key: SecretStr | None
            API key; default ``$LETTA_API_KEY``. Never shown in reprs, logs or traces.
        timeout: float | None
            Request timeout in seconds.
        max_retries: int
            Retries for idempotent requests (listing, lookups). A turn is never re-sent.
        client / async_client: Letta / AsyncLetta
            Bring your own letta-client instances.

    Which conversation a call uses (first match wins):
        1. ``config["configurable"]["conversation_id"]``: a ``conv-...`` id;
        2. ``config["configurable"]["session_id"]``: a session key;
        3. ``config["configurable"]["thread_id"]``: LangGraph's thread key, as a session key;
        4. ``conversation_id`` / ``session_id`` fixed on the instance;
        5. the conversation of the newest Letta message in the input (tool loops);
        6. otherwise a new conversation for this call alone, sent the whole input.

    Instantiate:
        .. code-block:: python

            from langchain_letta import ChatLetta

            model = ChatLetta(agent_id="agent-...")

    Invoke:
        .. code-block:: python

            alice = {"configurable": {"session_id": "alice"}}
            model.invoke("Hi, I am Alice.", config=alice)
            model.invoke("What is my name?", config=alice)   # same thread, resumed

    Stream:
        .. code-block:: python

            for chunk in model.stream("Tell me more", config=alice):
                print(chunk.text, end="")

    Async:
        .. code-block:: python

            await model.ainvoke("hi", config=alice)
            async for chunk in model.astream("hi", config=alice):
                ...

    Content and metadata:
        Text is the message's text; the agent's reasoning arrives as ``reasoning``
        blocks and its own (server-side) tool calls and results as ``server_tool_call``
        / ``server_tool_result`` blocks, never as ``tool_calls``. The AI message ``id``
        is Letta's message id; ``response_metadata`` holds ``model_name``,
        ``model_provider="letta"``, ``stop_reason``, ``run_id``, ``conversation_id``
        and ``agent_id``; ``usage_metadata`` holds Letta's token counts.

    Tool calling:
        .. code-block:: python

            model_with_tools = model.bind_tools([get_weather])
            msg = model_with_tools.invoke("Weather in Paris?", config=alice)
            msg.tool_calls   # run them, then send ToolMessages on the same session

        Bound tools are Letta client-side tools: the agent pauses for their result.

    Errors:
        Errors inherit both the ``langchain_core.exceptions`` class and the
        ``letta_client`` class (for example ``LettaNotFoundError`` is a
        ``ModelNotFoundError`` and a ``letta_client.NotFoundError``). See
        ``langchain_letta.errors``.

    Standard parameters:
        ``temperature``, ``max_tokens`` and ``stop`` are accepted for compatibility but
        the agent's own model settings on the server govern generation.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    agent_id: str
    """The Letta agent to talk to."""
    base_url: str | None = None
    """Letta server URL (default ``$LETTA_BASE_URL``, else Letta Cloud)."""
    api_key: SecretStr | None = None
    """Letta API key (default ``$LETTA_API_KEY``)."""
    timeout: float | None = None
    """Request timeout in seconds."""
    max_retries: int = 2
    """Retries for idempotent requests; sends are never retried blindly."""
    streaming: bool = False
    """Kept for LangChain compatibility: Letta always streams, invoke merges the stream."""
    stream_tokens: bool = False
    """Ask Letta for token-level deltas instead of one chunk per step."""
    max_steps: int | None = None
    """Upper bound on the agent's steps per turn."""
    sync_memory: SyncMemory = "auto"
    """When to bring a session's system prompt in step with the agent's memory blocks
    (Letta keeps the blocks a conversation was created with until it is recompiled).
    ``"auto"``: at the session's first turn in this process and after any turn of the
    agent here that ran a server-side tool, so what the agent writes to memory in one
    session reaches every other session's next turn at no cost in between. ``"always"``:
    before every turn (one light request), for blocks edited by other processes, the
    ADE or the API. ``"never"``: each conversation keeps the blocks it started with."""
    background: bool = False
    """Run turns as Letta background runs: a dropped stream resumes where it stopped
    (needs Redis on the server; Letta Cloud has it)."""
    busy_timeout: float = 60.0
    """Seconds to wait for a conversation that another run holds."""
    conversation_id: str | None = None
    """A conversation fixed on the instance (used when the config names none)."""
    session_id: str | None = None
    """A session key fixed on the instance (used when the config names none)."""
    session_store: SessionStore | None = Field(default=None, exclude=True)
    """Where session keys map to conversations (default: on the Letta server)."""
    model_name: str | None = Field(default=None, alias="model")
    """The agent's model handle; read from the agent on first use when not given."""
    temperature: float | None = None
    """Accepted for compatibility; the agent's model settings govern."""
    max_tokens: int | None = None
    """Accepted for compatibility; the agent's model settings govern."""
    stop: list[str] | None = None
    """Accepted for compatibility; Letta has no stop sequences."""
    client: Letta | None = Field(default=None, exclude=True, repr=False)
    """A letta-client to use instead of building one."""
    async_client: AsyncLetta | None = Field(default=None, exclude=True, repr=False)
    """An async letta-client to use instead of building one."""

    _conversations: Conversations = PrivateAttr()
    _resolver: SessionResolver = PrivateAttr()
    _agent_known: bool = PrivateAttr(default=False)
    _context_window: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _connect(self) -> ChatLetta:
        self.base_url = resolve_base_url(self.base_url)
        self.api_key = resolve_api_key(self.api_key)
        if self.client is None or self.async_client is None:
            client, async_client = make_clients(
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
            self.client = self.client or client
            self.async_client = self.async_client or async_client
        self._conversations = Conversations(self.client, self.async_client, self.busy_timeout)
        self._resolver = SessionResolver(self.client, self.agent_id, self.session_store)
        return self

    @property
    def _llm_type(self) -> str:
        return "letta-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``ChatLetta`` serializes with ``dumpd``; the API key is kept out as a secret."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_letta", "chat_models"]``."""
        return ["langchain_letta", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The API key is a secret, read from ``LETTA_API_KEY``."""
        return {"api_key": "LETTA_API_KEY"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "base_url": self.base_url,
            "model_name": self.model_name,
            "stream_tokens": self.stream_tokens,
            "max_steps": self.max_steps,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="letta",
            ls_model_name=kwargs.get("model") or self.model_name or self.agent_id,
            ls_model_type="chat",
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ------------------------------------------------------------------ routing by config

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Run one turn; the config's ``configurable`` selects the conversation."""
        config = ensure_config(config)
        return super().invoke(input, config, stop=stop, **_route(config, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async twin of :meth:`invoke`."""
        config = ensure_config(config)
        return await super().ainvoke(input, config, stop=stop, **_route(config, kwargs))

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
        yield from super().stream(input, config, stop=stop, **_route(config, kwargs))

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of :meth:`stream`."""
        config = ensure_config(config)
        async for chunk in super().astream(input, config, stop=stop, **_route(config, kwargs)):
            yield chunk

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the agent as Letta client-side tools.

        When the agent calls one, the turn ends with ``AIMessage.tool_calls``; answer
        with ``ToolMessage`` on the same session (or pass the AI message back in the
        input) and the agent continues. ``tool_choice`` is accepted but Letta lets the
        agent decide.
        """
        client_tools = []
        for tool in tools:
            function = convert_to_openai_tool(tool)["function"]
            client_tools.append(
                {
                    "name": function["name"],
                    "description": function.get("description") or "",
                    "parameters": function.get("parameters") or {"type": "object"},
                }
            )
        return self.bind(client_tools=client_tools, **kwargs)

    # ------------------------------------------------------------------ the turn

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _final(generate_from_stream(self._stream(messages, stop, run_manager, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        stream = self._astream(messages, stop, run_manager, **kwargs)
        return _final(await agenerate_from_stream(stream))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        route = kwargs.pop("letta_route", None)
        history = kwargs.pop("letta_history", None)
        _check_input(messages)
        options = self._send_options(kwargs)
        model_name = kwargs.get("model") or self._model_name()
        self._check_size(messages)
        turn = _Turn.plan(messages, *self._conversation(route, messages), self.agent_id, model_name)
        events = self._conversations.stream_turn(turn.conversation_id, turn.payloads, **options)
        try:
            for event in events:
                for chunk in turn.chunker.feed(event):
                    yield _emit(chunk, run_manager)
        except LettaNotFoundError:
            self._forget(turn)
            raise
        yield _emit(turn.close(history), run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        route = kwargs.pop("letta_route", None)
        history = kwargs.pop("letta_history", None)
        _check_input(messages)
        options = self._send_options(kwargs)
        model_name = kwargs.get("model") or await self._amodel_name()
        self._check_size(messages)
        conversation_id, session_id = await self._aconversation(route, messages)
        turn = _Turn.plan(messages, conversation_id, session_id, self.agent_id, model_name)
        events = self._conversations.astream_turn(turn.conversation_id, turn.payloads, **options)
        try:
            async for event in events:
                for chunk in turn.chunker.feed(event):
                    yield await _aemit(chunk, run_manager)
        except LettaNotFoundError:
            self._forget(turn)
            raise
        yield await _aemit(turn.close(history), run_manager)

    def _forget(self, turn: _Turn) -> None:
        """A session whose conversation is gone resolves afresh next time."""
        if turn.session_id:
            self._resolver.forget(turn.session_id)

    def _send_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"stream_tokens": kwargs.get("stream_tokens", self.stream_tokens)}
        max_steps = kwargs.get("max_steps", self.max_steps)
        if max_steps is not None:
            options["max_steps"] = max_steps
        if kwargs.get("client_tools"):
            options["client_tools"] = kwargs["client_tools"]
        if kwargs.get("model"):
            options["override_model"] = kwargs["model"]
        if kwargs.get("background", self.background):
            options["background"] = True
        options["agent_id"] = self.agent_id
        options["memory"] = check_mode(kwargs.get("sync_memory", self.sync_memory))
        return options

    # ------------------------------------------------------------------ which conversation

    def _pick(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> tuple[str | None, str | None]:
        """(conversation id, session key): at most one is set; both ``None`` means new."""
        kind, value = route or (None, None)
        if kind == "conversation_id":
            return value, None
        if kind in {"session_id", "thread_id"}:
            return None, check_session_id(value)
        if self.conversation_id:
            return self.conversation_id, None
        if self.session_id:
            return None, check_session_id(self.session_id)
        return anchor_conversation(messages), None

    def _conversation(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> tuple[str, str | None]:
        conversation_id, session_id = self._pick(route, messages)
        if conversation_id:
            return conversation_id, None
        if session_id:
            return str(self._resolver.resolve(session_id)), session_id
        try:
            created = self.client.conversations.create(agent_id=self.agent_id)  # type: ignore[union-attr]
        except Exception as error:
            raise translate_error(error) from error
        LEDGER.created(self.agent_id, created.id)
        return str(created.id), None

    async def _aconversation(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> tuple[str, str | None]:
        conversation_id, session_id = self._pick(route, messages)
        if conversation_id:
            return conversation_id, None
        if session_id:
            cached = self._resolver.cached(session_id)
            resolved = cached or await asyncio.to_thread(self._resolver.resolve, session_id)
            return str(resolved), session_id
        try:
            created = await self.async_client.conversations.create(agent_id=self.agent_id)  # type: ignore[union-attr]
        except Exception as error:
            raise translate_error(error) from error
        LEDGER.created(self.agent_id, created.id)
        return str(created.id), None

    def _model_name(self) -> str:
        if not self._agent_known:
            try:
                agent = self.client.agents.retrieve(self.agent_id)  # type: ignore[union-attr]
            except Exception as error:
                raise translate_error(error) from error
            self._learn(agent)
        return self.model_name or self.agent_id

    async def _amodel_name(self) -> str:
        if not self._agent_known:
            try:
                agent = await self.async_client.agents.retrieve(self.agent_id)  # type: ignore[union-attr]
            except Exception as error:
                raise translate_error(error) from error
            self._learn(agent)
        return self.model_name or self.agent_id

    def _learn(self, agent: Any) -> None:
        """Keep what a turn needs to know of the agent: its model and context window."""
        self.model_name = self.model_name or _agent_model(agent)
        window = getattr(getattr(agent, "llm_config", None), "context_window", None)
        self._context_window = window if isinstance(window, int) else None
        self._agent_known = True

    def _check_size(self, messages: Sequence[BaseMessage]) -> None:
        """Refuse input that cannot fit the agent's context window, before anything is sent."""
        if self._context_window is None:
            return
        unsent = [message for message in messages if not _is_letta_message(message)]
        estimate = len(json.dumps(to_letta_messages(unsent), default=str)) // 4
        if estimate > self._context_window:
            raise LettaInputTooLargeError(
                f"The input is about {estimate} tokens; the agent's context window holds "
                f"{self._context_window}. Nothing was sent."
            )


@dataclass
class _Turn:
    """One turn, planned: where it goes, what is sent, and how its stream is mapped."""

    conversation_id: str
    session_id: str | None
    payloads: list[dict[str, Any]]
    chunker: TurnChunker

    @classmethod
    def plan(
        cls,
        messages: Sequence[BaseMessage],
        conversation_id: str,
        session_id: str | None,
        agent_id: str,
        model_name: str,
    ) -> _Turn:
        """Send only what the conversation has not stored, with deterministic otids."""
        anchor, tail = unsent_tail(messages, conversation_id)
        payloads = to_letta_messages(tail, anchor=anchor)
        chunker = TurnChunker(
            conversation_id,
            agent_id,
            model_name=model_name,
            client_returns=client_return_ids(payloads),
        )
        stamped = with_otids(payloads, _seed(conversation_id, anchor))
        return cls(conversation_id, session_id, stamped, chunker)

    def close(self, history: Any) -> AIMessageChunk:
        """The closing chunk; remembers the turn's last message for the next seed."""
        _remember(self.conversation_id, self.chunker.last_message_id)
        if history is not None:
            history.hold_snapshot()
        return self.chunker.finish()


def _route(config: RunnableConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments that carry the config's conversation choice down to ``_stream``."""
    configurable = config.get("configurable") or {}
    routed = dict(kwargs)
    history = configurable.get("message_history")
    if hasattr(
        history, "hold_snapshot"
    ):  # a LettaChatMessageHistory under RunnableWithMessageHistory
        routed["letta_history"] = history
    for key in _ROUTE_KEYS:
        if configurable.get(key) is not None:
            routed["letta_route"] = (key, configurable[key])
            break
    return routed


def _is_letta_message(message: BaseMessage) -> bool:
    return str(message.id or "").startswith("message-")


def _check_input(messages: Sequence[BaseMessage]) -> None:
    """Validate the whole input before any request: a bad message raises, nothing is sent."""
    if not messages:
        raise LettaInputError("The input has no message to send.")
    to_letta_messages(messages)


def _seed(conversation_id: str, anchor: BaseMessage | None) -> str:
    with _LAST_SEEN_LOCK:
        last = anchor.id if anchor is not None else _LAST_SEEN.get(conversation_id, "")
    return f"{conversation_id}\n{last}"


def _remember(conversation_id: str, message_id: str | None) -> None:
    if message_id:
        with _LAST_SEEN_LOCK:
            _LAST_SEEN[conversation_id] = message_id


def _agent_model(agent: Any) -> str:
    llm_config = getattr(agent, "llm_config", None)
    return str(
        getattr(agent, "model", None)
        or getattr(llm_config, "handle", None)
        or getattr(llm_config, "model", None)
        or "letta"
    )


def _emit(
    chunk: AIMessageChunk, run_manager: CallbackManagerForLLMRun | None
) -> ChatGenerationChunk:
    generation = ChatGenerationChunk(message=chunk)
    if run_manager:
        run_manager.on_llm_new_token(chunk.text, chunk=generation)
    return generation


async def _aemit(
    chunk: AIMessageChunk, run_manager: AsyncCallbackManagerForLLMRun | None
) -> ChatGenerationChunk:
    generation = ChatGenerationChunk(message=chunk)
    if run_manager:
        await run_manager.on_llm_new_token(chunk.text, chunk=generation)
    return generation


def _final(result: ChatResult) -> ChatResult:
    generation = result.generations[0]
    message = strip_indexes(generation.message)  # type: ignore[arg-type]
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output=result.llm_output)
