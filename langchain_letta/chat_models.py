"""``ChatLetta``: a LangChain chat model over a Letta agent's conversations."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, ModelProfile
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
    ensure_config,
)
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from letta_client import AsyncLetta, Letta
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_letta.auxiliary import adiscard, athrowaway, discard, throwaway
from langchain_letta.clients import shared_clients
from langchain_letta.connection import Endpoint, resolve_endpoint
from langchain_letta.conversation import BLOCKS, Conversations
from langchain_letta.errors import (
    LettaConnectionError,
    LettaInputError,
    LettaInputTooLargeError,
    LettaNotFoundError,
    LettaPendingApprovalError,
    LettaStructuredOutputError,
    LettaTimeoutError,
    translate_error,
)
from langchain_letta.forks import Branches, record_tip, replay_key
from langchain_letta.locks import current_owner
from langchain_letta.memory import SyncMemory, check_mode
from langchain_letta.messages import (
    TurnChunker,
    anchor_conversation,
    client_return_ids,
    strip_indexes,
    to_letta_messages,
    unsent_tail,
)
from langchain_letta.profile import letta_profile
from langchain_letta.sessions import (
    SessionResolver,
    SessionStore,
    acheck_owner,
    bind,
    check_agent_id,
    check_conversation_id,
    check_owner,
    check_session_id,
)
from langchain_letta.sizes import estimate_payload_tokens, estimate_text_tokens
from langchain_letta.state import MEMORY_CHECKS, PENDING, UNANSWERED, WARNED
from langchain_letta.structured import acknowledgement, pending_structured_calls
from langchain_letta.tool_choice import forced_tools, reask
from langchain_letta.turns import keyed_otids

__all__ = ["ChatLetta"]

_FOLLOWING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "langchain_letta_following", default=False
)  # a turn re-sent once to its session's conversation after a 404 (no second follow)
_BASIC_AUTH: contextvars.ContextVar[SecretStr | None] = contextvars.ContextVar(
    "langchain_letta_basic_auth", default=None
)  # credentials split off base_url in __init__, for _connect to build the clients with

_LOG = logging.getLogger(__name__)

_ROUTE_KEYS = ("conversation_id", "session_id", "thread_id")
_INTERNAL_KWARGS = frozenset(
    {
        "letta_route",
        "letta_history",
        "letta_structured",
        "letta_owner",
        "letta_forced_tools",
        "idempotency_key",
        *_ROUTE_KEYS,
    }
)


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
        sync_memory: "always" | float | "process" | "never"
            When to check the agent's shared memory blocks and rebuild a session's
            prompt if they changed: ``"always"`` (default) before every turn, so every
            session sees every committed block edit, wherever it was made (one light
            request per turn, read alongside the history's read under
            ``RunnableWithMessageHistory``); a number of seconds: at most that often; ``"process"``:
            only at a session's first turn here and after a server-side tool ran here;
            ``"never"``.
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

        One reply, one id: every chunk of a reply (token deltas, reasoning, tool
        steps, the closing chunk) carries the id of the first Letta message the turn
        streams, and so do the invoked reply and the history.

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
        and ``agent_id``; ``usage_metadata`` holds Letta's token counts. When the
        server compacted the conversation during the turn, ``letta_system_alerts``
        lists the summaries it wrote (``id`` and ``content``), the same ids and texts
        the history shows as ``SystemMessage``.

    Tool calling:
        .. code-block:: python

            model_with_tools = model.bind_tools([get_weather])
            msg = model_with_tools.invoke("Weather in Paris?", config=alice)
            msg.tool_calls   # run them, then send ToolMessages on the same session

        Bound tools are Letta client-side tools: the agent pauses for their result.

    Exactly once:
        A turn's identity is the call, not its text: every call sends its messages with
        new ``otid`` values, so the same text twice is two turns. A turn whose outcome
        the caller was not told (a timeout, a stream that dropped and whose run outlived
        the wait) is remembered; the next call with the same content in the same
        conversation (``with_retry``, ``with_fallbacks`` to another ``ChatLetta``, a manual
        retry) reuses its ``otid``, finds its run and returns what it stored instead of
        sending it again. ``configurable.idempotency_key`` names a call across
        processes. A dropped foreground stream waits for its run and returns the stored
        reply; errors carry ``turn_stored``. Closing, abandoning or cancelling a stream
        cancels its run on the server.

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
    """LangChain's switch: set explicitly to ``False``, ``stream()`` returns the whole
    reply as one chunk (LangChain's rule for every chat model); ``True`` streams
    ``invoke`` through the callbacks token by token. Letta's stream is read either way."""
    stream_tokens: bool = False
    """Ask Letta for token-level deltas instead of one chunk per step."""
    max_steps: int | None = None
    """Upper bound on the agent's steps per turn (at least 1). A turn that reaches it
    ends with ``stop_reason="max_steps"``; its message keeps Letta's id, so the next
    turn continues from it."""
    sync_memory: SyncMemory = "always"
    """When to bring a session's system prompt in step with the agent's memory blocks
    (Letta keeps the blocks a conversation was created with until it is recompiled; the
    prompt is recompiled only when the blocks differ). ``"always"`` (default, exact):
    before every turn, so an edit committed before a turn starts is in its prompt,
    whoever made it (the agent in any process or replica, the API, the ADE); one light
    request per turn. ``<seconds>``: at most that often per session, and after any turn
    here that ran a server-side tool. ``"process"``: at a session's first turn in this
    process and after any turn here that ran a server-side tool (edits made by other
    processes or the API are not seen; ``"auto"`` is its former name). ``"never"``:
    each conversation keeps the blocks it started with."""
    background: bool = False
    """Run turns as Letta background runs: a dropped stream resumes where it stopped
    (needs Redis on the server; Letta Cloud has it)."""
    busy_timeout: float = 60.0
    """Seconds to wait for a conversation that another run holds."""
    auxiliary: bool = False
    """For helper calls that are not the user's turn (middleware, summaries): each call
    runs in a throwaway conversation, deleted after it, whatever the config routes to
    (see :mod:`langchain_letta.auxiliary`)."""
    conversation_id: str | None = None
    """A conversation fixed on the instance (used when the config names none)."""
    session_id: str | None = None
    """A session key fixed on the instance (used when the config names none)."""
    session_store: SessionStore | None = Field(default=None, exclude=True)
    """Where session keys map to conversations (default: on the Letta server)."""
    model_name: str | None = Field(default=None, alias="model")
    """A name for the agent's model in traces and metadata. When not given, the agent's
    own model handle is read on first use and reported in ``response_metadata``, but
    this field stays unset, so LangChain's name-based choices (``create_agent``'s
    structured-output strategy) never change between a session's turns."""
    temperature: float | None = None
    """Accepted for compatibility; the agent's model settings govern."""
    max_tokens: int | None = None
    """Accepted for compatibility; the agent's model settings govern."""
    stop: list[str] | None = None
    """Accepted for compatibility; Letta has no stop sequences."""
    cache: BaseCache | bool | None = Field(default=False, exclude=True)
    """Off by default: a stateful agent's reply is not a function of the input, and a
    cached reply would skip storing the turn. Set a cache only if you want that."""
    client: Letta | None = Field(default=None, exclude=True, repr=False)
    """A letta-client to use instead of building one."""
    async_client: AsyncLetta | None = Field(default=None, exclude=True, repr=False)
    """An async letta-client to use instead of building one."""

    _conversations: Conversations = PrivateAttr()
    _resolver: SessionResolver = PrivateAttr()
    _branches: Branches = PrivateAttr()
    _agent_known: bool = PrivateAttr(default=False)
    _agent_model: str | None = PrivateAttr(default=None)
    _context_window: int | None = PrivateAttr(default=None)

    @field_validator("sync_memory", mode="before")
    @classmethod
    def _check_sync_memory(cls, value: object) -> SyncMemory:
        return check_mode(value)

    def __init__(self, **kwargs: Any) -> None:
        """Build the model; bad arguments raise ``LettaInputError`` before any request.

        Credentials inside ``base_url`` are split off first (see
        :mod:`langchain_letta.connection`), so the model never holds them in a field.
        """
        check_agent_id(kwargs.get("agent_id"))
        if kwargs.get("conversation_id") is not None:
            check_conversation_id(kwargs["conversation_id"])
        if kwargs.get("session_id") is not None:
            check_session_id(kwargs["session_id"])
        endpoint = resolve_endpoint(kwargs.get("base_url"), kwargs.get("api_key"))
        kwargs["base_url"], kwargs["api_key"] = endpoint.url, endpoint.api_key
        token = _BASIC_AUTH.set(endpoint.basic_auth)  # for _connect, which builds the clients
        try:
            super().__init__(**kwargs)  # pydantic's own errors hold no credentials now
        finally:
            _BASIC_AUTH.reset(token)

    @model_validator(mode="after")
    def _connect(self) -> ChatLetta:
        check_max_steps(self.max_steps)
        if self.conversation_id is not None:
            check_conversation_id(self.conversation_id)
        if self.session_id is not None:
            check_session_id(self.session_id)
        endpoint = resolve_endpoint(self.base_url, self.api_key)
        self.base_url, self.api_key = endpoint.url, endpoint.api_key
        self.client, self.async_client = shared_clients(
            Endpoint(self.base_url, self.api_key, _BASIC_AUTH.get()),
            timeout=self.timeout,
            max_retries=self.max_retries,
            client=self.client,
            async_client=self.async_client,
        )
        self._conversations = Conversations(self.client, self.async_client, self.busy_timeout)
        self._resolver = SessionResolver(
            self.client, self.agent_id, self.session_store, async_client=self.async_client
        )
        self._branches = Branches(self.client, self.agent_id)
        return self

    def _resolve_model_profile(self) -> ModelProfile | None:
        """Tool calling yes, native structured output no (see :mod:`langchain_letta.profile`)."""
        return letta_profile()

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
            ls_model_name=kwargs.get("model") or self._model_label(),
            ls_model_type="chat",
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The call's parameters as tracing and caching see them, without routing internals."""
        public = {key: value for key, value in kwargs.items() if key not in _INTERNAL_KWARGS}
        return super()._get_invocation_params(stop=stop, **public)

    def get_num_tokens(self, text: str) -> int:
        """About how many tokens ``text`` takes (an estimate; see ``langchain_letta.sizes``)."""
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[Any] | None = None,
    ) -> int:
        """About how many tokens ``messages`` (and ``tools``) take, without a tokenizer."""
        total = estimate_payload_tokens(to_letta_messages(messages)) if messages else 0
        for tool in tools or []:
            total += estimate_text_tokens(str(convert_to_openai_tool(tool)))
        return total

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
        routed = _route(config, kwargs)
        return super().stream_events(input, config, version=version, stop=stop, **routed)

    def astream_events(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        **kwargs: Any,
    ) -> Any:
        """Async twin of :meth:`stream_events`."""
        config = ensure_config(config)
        return super().astream_events(input, config, version=version, **_route(config, kwargs))

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
        input) and the agent continues. Letta lets the agent decide: a ``tool_choice``
        that forces a tool (``"any"``, ``"required"``, a tool's name) is asked for again
        when the model is called again after a reply in text (see
        :mod:`langchain_letta.tool_choice`).

        Raises:
            LettaInputError: for a ``response_format``: a Letta send has no per-request
                response format (``profile["structured_output"]`` is ``False``); ask
                for structured output through tool calling instead
                (``create_agent(response_format=ToolStrategy(Schema))``).

        """
        if kwargs.pop("response_format", None) is not None:
            raise LettaInputError(
                "Letta has no per-request response format, so ChatLetta cannot honour "
                "bind_tools(response_format=...). Ask for structured output through tool "
                "calling: create_agent(response_format=ToolStrategy(Schema)) or "
                "model.with_structured_output(Schema). Nothing was sent."
            )
        kwargs.pop("strict", None)  # OpenAI's strict schemas: Letta has no such switch
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
        forced = forced_tools(tool_choice, [tool["name"] for tool in client_tools])
        if forced:
            kwargs["letta_forced_tools"] = forced
        return self.bind(client_tools=client_tools, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that answers with an instance of ``schema``.

        ``method="function_calling"`` (the default) offers ``schema`` to the agent as a
        client-side tool and parses its call. Letta then waits for the tool's result, so
        the call is answered in the same turn (a short acknowledgement the agent replies
        to), and the session is free for its next turn. ``"json_schema"`` and
        ``"json_mode"`` need a per-request response format, which Letta's Conversations
        API does not take: they use function calling too, and say so once in the log.

        If the agent answers without calling the tool, ``LettaStructuredOutputError``
        is raised (with ``include_raw=True`` it is returned as ``parsing_error``).
        ``strict`` is accepted for compatibility: Letta's client tools have no strict
        mode, the parser checks the answer against ``schema``.
        """
        if kwargs:
            raise LettaInputError(f"Unsupported arguments: {', '.join(sorted(kwargs))}.")
        if method not in {"function_calling", "json_schema", "json_mode"}:
            raise LettaInputError(f"Unknown structured-output method {method!r}.")
        if method != "function_calling":
            _warn_once(
                f"with_structured_output(method={method!r}): Letta's Conversations API takes "
                'no per-request response format; using method="function_calling".'
            )
        tool_name = str(convert_to_openai_tool(schema)["function"]["name"])
        bound = self.bind_tools(
            [schema],
            letta_structured=tool_name,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        is_model = isinstance(schema, type) and is_basemodel_subclass(schema)
        tools_parser: Runnable[Any, Any] = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if is_model
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
        )

        def require_call(message: AIMessage) -> AIMessage:
            if not any(call["name"] == tool_name for call in message.tool_calls):
                raise LettaStructuredOutputError(
                    f"The agent answered without calling {tool_name}: {message.text[:200]!r}",
                    llm_output=message.text,
                )
            return message

        parser = RunnableLambda(require_call) | tools_parser
        if not include_raw:
            return bound | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        with_fallback = parsed.with_fallbacks([unparsed], exception_key="parsing_error")
        return RunnableMap(raw=bound) | with_fallback

    # ------------------------------------------------------------------ the turn

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._stream(messages, stop, run_manager, **kwargs))
        return _final(generate_from_stream(iter(chunks)), chunks[-1].message.id)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = [chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)]
        return _final(generate_from_stream(iter(chunks)), chunks[-1].message.id)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        messages = reask(messages, kwargs.get("letta_forced_tools"))
        call = self._prepare(messages, kwargs)
        blocks = self._read_agent()
        model_name = call.model or self._model_label()
        self._check_size(call.unsent)
        given, started, followed, settled = messages, False, False, False
        if self.auxiliary:  # a helper call: its own throwaway conversation
            conversation_id, session_id = throwaway(self.client, self.agent_id), None  # type: ignore[arg-type]
        else:
            conversation_id, session_id = self._conversation(call.route, messages)
            # time travel: a diverging input continues in a branch (langchain_letta.forks)
            conversation_id, messages = self._branches.place(conversation_id, messages)
        prefetched = _prefetched(call, conversation_id)  # read with the chain's history
        blocks = blocks or prefetched
        answered = self._answer_pending(conversation_id, call)
        turn = _Turn.plan(
            messages, conversation_id, session_id, self.agent_id, model_name, call.options
        )
        sent, retry_of = self._conversations.identify(conversation_id, turn.payloads, call.key)
        if retry_of is None and (first_step := replay_key(conversation_id, messages)):
            sent = keyed_otids(turn.payloads, first_step)  # a replay is known anywhere
        events = self._conversations.stream_turn(
            conversation_id,
            sent,
            retry_of=retry_of,
            fresh_blocks=blocks,
            owner=call.owner,
            **call.options,
        )
        try:
            try:
                for event in events:
                    for chunk in turn.chunker.feed(event):
                        started = True
                        yield _emit(chunk, run_manager)
            except BaseException:
                _note_unanswered(turn, call)
                raise
            finally:
                events.close()
            ids = _to_acknowledge(turn, call, answered)
            if ids:
                try:
                    self._send_quietly(conversation_id, acknowledgement(ids), call)
                except (LettaConnectionError, LettaTimeoutError):
                    _note_unanswered(turn, call)  # the next turn here answers it
                turn.chunker.requests.clear()  # answered: nothing is left pending
        except LettaNotFoundError:
            if not self._may_follow(turn, started or _FOLLOWING.get()):
                raise
            followed = True  # the session moved on (cleared elsewhere): follow it once
        except LettaPendingApprovalError:
            if started or _FOLLOWING.get() or not self._recover_pending(turn):
                raise
            settled = True  # a call left pending by another process: settle it, once
        finally:
            if self.auxiliary:
                discard(self.client, conversation_id)  # type: ignore[arg-type]
        if followed or settled:
            if followed:
                self._follow(turn)
            token = _FOLLOWING.set(True)
            try:
                yield from self._stream(given, stop, run_manager, **kwargs)
            finally:
                _FOLLOWING.reset(token)
            return
        yield _emit(turn.close(call.history), run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        messages = reask(messages, kwargs.get("letta_forced_tools"))
        call = self._prepare(messages, kwargs)
        blocks = await self._aread_agent()
        model_name = call.model or self._model_label()
        self._check_size(call.unsent)
        given, started, followed, settled = messages, False, False, False
        if self.auxiliary:  # a helper call: its own throwaway conversation
            conversation_id = await athrowaway(self.async_client, self.agent_id)  # type: ignore[arg-type]
            session_id = None
        else:
            conversation_id, session_id = await self._aconversation(call.route, messages)
            # time travel: a diverging input continues in a branch (langchain_letta.forks)
            place = self._branches.place
            conversation_id, messages = await asyncio.to_thread(place, conversation_id, messages)
        prefetched = _prefetched(call, conversation_id)  # read with the chain's history
        blocks = blocks or prefetched
        answered = await self._aanswer_pending(conversation_id, call)
        turn = _Turn.plan(
            messages, conversation_id, session_id, self.agent_id, model_name, call.options
        )
        sent, retry_of = self._conversations.identify(conversation_id, turn.payloads, call.key)
        if retry_of is None and (first_step := replay_key(conversation_id, messages)):
            sent = keyed_otids(turn.payloads, first_step)  # a replay is known anywhere
        events = self._conversations.astream_turn(
            conversation_id,
            sent,
            retry_of=retry_of,
            fresh_blocks=blocks,
            owner=call.owner,
            **call.options,
        )
        try:
            try:
                async for event in events:
                    for chunk in turn.chunker.feed(event):
                        started = True
                        yield await _aemit(chunk, run_manager)
            except BaseException:
                _note_unanswered(turn, call)
                raise
            finally:
                await events.aclose()
            ids = _to_acknowledge(turn, call, answered)
            if ids:
                try:
                    await self._asend_quietly(conversation_id, acknowledgement(ids), call)
                except (LettaConnectionError, LettaTimeoutError):
                    _note_unanswered(turn, call)
                turn.chunker.requests.clear()  # answered: nothing is left pending
        except LettaNotFoundError:
            if not self._may_follow(turn, started or _FOLLOWING.get()):
                raise
            followed = True  # the session moved on (cleared elsewhere): follow it once
        except LettaPendingApprovalError:
            if started or _FOLLOWING.get():
                raise
            if not await asyncio.to_thread(self._recover_pending, turn):
                raise
            settled = True  # a call left pending by another process: settle it, once
        finally:
            if self.auxiliary:
                await adiscard(self.async_client, conversation_id)  # type: ignore[arg-type]
        if followed or settled:
            if followed:
                await asyncio.to_thread(self._follow, turn)
            token = _FOLLOWING.set(True)
            try:
                async for generation in self._astream(given, stop, run_manager, **kwargs):
                    yield generation
            finally:
                _FOLLOWING.reset(token)
            return
        yield await _aemit(turn.close(call.history), run_manager)

    def _send_quietly(
        self, conversation_id: str, payloads: list[dict[str, Any]], call: _Call
    ) -> None:
        """Send a turn of the package's own (an acknowledgement) and drop its events."""
        sent, _ = self._conversations.identify(conversation_id, payloads)
        events = self._conversations.stream_turn(
            conversation_id, sent, owner=call.owner, **_without_tools(call.options)
        )
        for _event in events:
            pass

    async def _asend_quietly(
        self, conversation_id: str, payloads: list[dict[str, Any]], call: _Call
    ) -> None:
        """Async twin of :meth:`_send_quietly`."""
        sent, _ = self._conversations.identify(conversation_id, payloads)
        events = self._conversations.astream_turn(
            conversation_id, sent, owner=call.owner, **_without_tools(call.options)
        )
        async for _event in events:
            pass

    def _answer_pending(self, conversation_id: str, call: _Call) -> frozenset[str]:
        """Answer a structured-output call an earlier turn left waiting (see ``structured``)."""
        tool_name = UNANSWERED.take(conversation_id)
        if tool_name is None:
            return frozenset()
        self._conversations.wait_idle(conversation_id)  # the structured call's run may be going
        newest = self._conversations.page(conversation_id, order="desc", limit=5)
        ids = pending_structured_calls(newest, tool_name)
        if ids:
            try:
                self._send_quietly(conversation_id, acknowledgement(ids), call)
            except Exception:
                UNANSWERED.note(conversation_id, tool_name)
                raise
        return frozenset(ids)

    async def _aanswer_pending(self, conversation_id: str, call: _Call) -> frozenset[str]:
        """Async twin of :meth:`_answer_pending`."""
        tool_name = UNANSWERED.take(conversation_id)
        if tool_name is None:
            return frozenset()
        await self._conversations.await_idle(conversation_id)
        newest = await self._conversations.apage(conversation_id, order="desc", limit=5)
        ids = pending_structured_calls(newest, tool_name)
        if ids:
            try:
                await self._asend_quietly(conversation_id, acknowledgement(ids), call)
            except Exception:
                UNANSWERED.note(conversation_id, tool_name)
                raise
        return frozenset(ids)

    def _prepare(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> _Call:
        """Everything a turn needs from the call, checked before any request."""
        kwargs = dict(kwargs)
        route = kwargs.pop("letta_route", None) or _route_in(kwargs) or _ambient_route()
        history = kwargs.pop("letta_history", None)
        key = kwargs.pop("idempotency_key", None)
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise LettaInputError("idempotency_key must be a non-empty string.")
        structured = kwargs.pop("letta_structured", None)
        owner = kwargs.pop("letta_owner", None)
        for name in _ROUTE_KEYS:
            kwargs.pop(name, None)
        unsent = _check_input(messages)
        options = self._send_options(kwargs)
        model = kwargs.get("model")
        return _Call(route, history, key, options, model, structured, unsent, owner)

    def _may_follow(self, turn: _Turn, too_late: bool) -> bool:
        """Whether a 404 on ``turn`` may be cured by following its session once more.

        A session's cached conversation that is gone (``clear()`` in another process
        deletes it) is resolved again, and the turn, which the 404 kept from being
        stored, is sent to the session's conversation now; once only, and only before
        anything of the turn streamed. Otherwise the cache entry is dropped.
        """
        if turn.session_id and too_late:
            self._resolver.forget(turn.session_id, turn.conversation_id)
        return bool(turn.session_id) and not too_late

    def _recover_pending(self, turn: _Turn) -> bool:
        """Learn the calls the conversation waits for (see ``PendingCalls.recover``)."""
        tools = turn.chunker.client_tools or frozenset()
        try:
            return PENDING.recover(self.client, turn.conversation_id, tools)
        except Exception as error:
            raise translate_error(error) from error

    def _follow(self, turn: _Turn) -> str:
        return str(self._resolver.refresh(str(turn.session_id), turn.conversation_id))

    def _send_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"stream_tokens": kwargs.get("stream_tokens", self.stream_tokens)}
        max_steps = check_max_steps(kwargs.get("max_steps", self.max_steps))
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
            return check_conversation_id(value, where="configurable.conversation_id"), None
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
            check_owner(self.client, self.agent_id, conversation_id)  # type: ignore[arg-type]
            return conversation_id, None
        if session_id:
            return str(self._resolver.resolve(session_id)), session_id
        try:
            created = self._conversations.client.with_options(max_retries=0).conversations.create(
                agent_id=self.agent_id
            )
        except Exception as error:
            raise translate_error(error) from error
        MEMORY_CHECKS.created(self.agent_id, created.id)
        bind(str(self.client.base_url), created.id, self.agent_id)  # type: ignore[union-attr]
        return str(created.id), None

    async def _aconversation(
        self, route: tuple[str, str] | None, messages: Sequence[BaseMessage]
    ) -> tuple[str, str | None]:
        conversation_id, session_id = self._pick(route, messages)
        if conversation_id:
            await acheck_owner(self._conversations.async_client, self.agent_id, conversation_id)
            return conversation_id, None
        if session_id:
            cached = self._resolver.cached(session_id)
            resolved = cached or await self._resolver.aresolve(session_id)
            return str(resolved), session_id
        try:
            created = await self._conversations.async_client.with_options(
                max_retries=0
            ).conversations.create(agent_id=self.agent_id)
        except Exception as error:
            raise translate_error(error) from error
        MEMORY_CHECKS.created(self.agent_id, created.id)
        bind(str(self.client.base_url), created.id, self.agent_id)  # type: ignore[union-attr]
        return str(created.id), None

    def _read_agent(self) -> list[Any] | None:
        """Learn the agent at the first turn; its memory blocks come with it (one request)."""
        if self._agent_known:
            return None
        try:
            agent = self._conversations.client.agents.retrieve(self.agent_id, include=BLOCKS)
        except Exception as error:
            raise translate_error(error) from error
        self._learn(agent)
        return list(agent.blocks) if agent.blocks is not None else None

    async def _aread_agent(self) -> list[Any] | None:
        """Async twin of :meth:`_read_agent`."""
        if self._agent_known:
            return None
        try:
            client = self._conversations.async_client
            agent = await client.agents.retrieve(self.agent_id, include=BLOCKS)
        except Exception as error:
            raise translate_error(error) from error
        self._learn(agent)
        return list(agent.blocks) if agent.blocks is not None else None

    def _model_label(self) -> str:
        """The model's name for traces: as given, else the agent's handle, else its id."""
        return self.model_name or self._agent_model or self.agent_id

    def _learn(self, agent: Any) -> None:
        """Keep what a turn needs to know of the agent: its model and context window."""
        self._agent_model = _agent_model(agent)
        window = getattr(getattr(agent, "llm_config", None), "context_window", None)
        self._context_window = window if isinstance(window, int) else None
        self._agent_known = True

    def _check_size(self, unsent: Sequence[BaseMessage]) -> None:
        """Refuse input that cannot fit the agent's context window, before anything is sent."""
        if self._context_window is None:
            return
        estimate = estimate_payload_tokens(to_letta_messages(unsent))
        if estimate > self._context_window:
            raise LettaInputTooLargeError(
                f"The input is about {estimate} tokens; the agent's context window holds "
                f"{self._context_window}. Nothing was sent."
            )


@dataclass
class _Call:
    """What one call asks of a turn, checked: where it goes and how it is sent."""

    route: tuple[str, str] | None
    history: Any
    key: str | None
    options: dict[str, Any]
    model: str | None
    structured: str | None
    unsent: list[BaseMessage]
    owner: object | None


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
        options: dict[str, Any],
    ) -> _Turn:
        """Send only what the conversation has not stored (``otid`` values come later)."""
        anchor, tail = unsent_tail(messages, conversation_id)
        # calls an earlier turn left waiting are answered first (langchain_letta.approvals)
        payloads = PENDING.settle(conversation_id, to_letta_messages(tail, anchor=anchor))
        chunker = TurnChunker(
            conversation_id,
            agent_id,
            model_name=model_name,
            client_returns=client_return_ids(payloads),
            client_tools=frozenset(tool["name"] for tool in options.get("client_tools") or []),
        )
        return cls(conversation_id, session_id, payloads, chunker)

    def close(self, history: Any) -> AIMessageChunk:
        """The closing chunk (a history under ``RunnableWithMessageHistory`` keeps its read)."""
        if history is not None:
            history.repeat_last_read()
        record_tip(self.conversation_id, self.chunker.last_message_id)  # langchain_letta.forks
        waiting = self.chunker.requests if self.chunker.stop_reason == "requires_approval" else []
        PENDING.record(self.conversation_id, waiting)  # langchain_letta.approvals
        return self.chunker.finish()


def _prefetched(call: _Call, conversation_id: str) -> list[Any] | None:
    """Blocks the chain's history read fetched for this turn (``langchain_letta.prefetch``)."""
    MEMORY_CHECKS.turn_mode(conversation_id, call.options["memory"])
    take = getattr(call.history, "take_prefetched_blocks", None)
    return take(conversation_id) if take is not None else None


def _route(config: RunnableConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments that carry the config's conversation choice down to ``_stream``."""
    configurable = config.get("configurable") or {}
    routed = dict(kwargs)
    routed.setdefault("letta_owner", current_owner())  # the thread or task the call came from
    history = configurable.get("message_history")
    if hasattr(
        history, "repeat_last_read"
    ):  # a LettaChatMessageHistory under RunnableWithMessageHistory
        routed["letta_history"] = history
    route = _route_in(configurable)
    if route is not None:
        routed["letta_route"] = route
    if configurable.get("idempotency_key") is not None:
        routed.setdefault("idempotency_key", configurable["idempotency_key"])
    return routed


def _route_in(values: dict[str, Any]) -> tuple[str, str] | None:
    """The first conversation choice in ``values`` (a ``configurable`` or call kwargs)."""
    for key in _ROUTE_KEYS:
        value = values.get(key)
        if value is not None:  # checked here, before any request
            if key == "conversation_id":
                check_conversation_id(value, where="configurable.conversation_id")
            else:
                check_session_id(value)
            return (key, value)
    return None


def _ambient_route() -> tuple[str, str] | None:
    """The conversation choice of the runnable this call runs inside (a graph node, a chain)."""
    return _route_in(ensure_config().get("configurable") or {})


def check_max_steps(max_steps: object) -> int | None:
    """``max_steps`` if it is ``None`` or a whole number of at least 1, else ``LettaInputError``."""
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise LettaInputError(f"max_steps must be a whole number of at least 1; got {max_steps!r}.")
    return max_steps


def _warn_once(message: str) -> None:
    if message not in WARNED:
        WARNED[message] = True
        _LOG.warning(message)


def _is_letta_message(message: BaseMessage) -> bool:
    return str(message.id or "").startswith("message-")


def _check_input(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages after the newest one Letta stored, checked; nothing is sent on error.

    Only what will be sent is validated: a stored message (a turn that ended on a tool
    step, say) is an anchor, whatever its content.
    """
    if not messages:
        raise LettaInputError("The input has no message to send.")
    unsent = list(messages)
    for position in range(len(messages) - 1, -1, -1):
        if _is_letta_message(messages[position]):
            unsent = list(messages[position + 1 :])
            break
    to_letta_messages(unsent)
    if not any(message.type in {"human", "tool"} for message in unsent):
        kinds = ", ".join(sorted({message.type for message in unsent}))
        raise LettaInputError(
            f"The input has no human or tool message to answer (only {kinds}); nothing was sent."
        )
    return unsent


def _to_acknowledge(turn: _Turn, call: _Call, answered: frozenset[str]) -> list[str]:
    """Ids of the structured-output calls this turn ended with that still need answering."""
    if call.structured is None or turn.chunker.stop_reason != "requires_approval":
        return []
    calls = turn.chunker.client_calls
    if not calls or any(name != call.structured for _call_id, name in calls):
        return []
    return [call_id for call_id, _name in calls if call_id not in answered]


def _note_unanswered(turn: _Turn, call: _Call) -> None:
    """A structured-output call that may have left its conversation waiting."""
    if call.structured is not None:
        UNANSWERED.note(turn.conversation_id, call.structured)


def _without_tools(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != "client_tools"}


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


def _final(result: ChatResult, reply_id: str | None) -> ChatResult:
    """The merged reply, under the id of its closing chunk (the reply's id)."""
    generation = result.generations[0]
    message = strip_indexes(generation.message)  # type: ignore[arg-type]
    if reply_id:
        message = message.model_copy(update={"id": reply_id})
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output=result.llm_output)
