"""`ChatLetta`: a LangChain chat model over a Letta agent's conversations.

This module is LangChain glue: the model's fields and its `BaseChatModel` methods.
The turn itself runs in `langchain_letta.engine`; routing by config is
`langchain_letta.routing`; tools and structured output are
`langchain_letta.client_tools`.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal, Self

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, ModelProfile
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from letta_client import AsyncLetta, Letta
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)

from langchain_letta.calls import check_max_steps
from langchain_letta.client_tools import estimate_call_tokens, structured_output, tool_binding
from langchain_letta.connection import resolve_endpoint
from langchain_letta.engine import TurnEngine
from langchain_letta.errors import LettaInputError
from langchain_letta.memory import SyncMemory, check_mode
from langchain_letta.messages import strip_indexes
from langchain_letta.notices import say_ignored
from langchain_letta.profile import letta_profile
from langchain_letta.routing import RoutedChatModel, check_fixed_route
from langchain_letta.sessions import SessionStore, check_agent_id
from langchain_letta.sizes import estimate_text_tokens

__all__ = ["ChatLetta"]

_BASIC_AUTH: contextvars.ContextVar[SecretStr | None] = contextvars.ContextVar(
    "langchain_letta_basic_auth", default=None
)  # credentials split off base_url in __init__, for _connect to build the clients with


class ChatLetta(RoutedChatModel):
    """Chat with a stateful Letta agent, one Letta conversation per session.

    Letta keeps each thread and the agent's memory on the server. Each session key gets
    its own conversation (made on first use, found again after a restart, in any process);
    all sessions share the agent's memory blocks and tools. Only what Letta lacks is sent,
    so it combines exactly with `RunnableWithMessageHistory` and `LettaChatMessageHistory`.

    Setup:
        ```bash
        pip install -U langchain-letta
        export LETTA_BASE_URL="http://127.0.0.1:8283"   # default: Letta Cloud
        export LETTA_API_KEY="..."                      # not needed for a local server
        ```

    Instantiate and invoke:
        ```python
        from langchain_letta import ChatLetta

        model = ChatLetta(agent_id="agent-...")
        alice = {"configurable": {"session_id": "alice"}}
        model.invoke("Hi, I am Alice.", config=alice)
        for chunk in model.stream("What is my name?", config=alice):  # same thread
            print(chunk.text, end="")
        ```

    A reply, its chunks and the history carry the id of the turn's first Letta message.
    More in `langchain_letta.routing` (which conversation a call uses), `.turn_stream` (a
    turn stored exactly once), `.messages` (content blocks, `letta_system_alerts`), `.errors`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    agent_id: str
    """The Letta agent (`agent-...`) to talk to."""
    base_url: str | None = None
    """Letta server URL (default `$LETTA_BASE_URL`, else Letta Cloud)."""
    api_key: SecretStr | None = None
    """Letta API key (default `$LETTA_API_KEY`); never in reprs, logs or traces."""
    timeout: float | None = None
    """Request timeout in seconds."""
    max_retries: int = 2
    """Retries for idempotent requests (lists, lookups); a turn is never re-sent blindly."""
    streaming: bool = False
    """LangChain's switch: set to `False`, `stream()` yields the reply as one chunk."""
    stream_tokens: bool = False
    """Ask Letta for token-level deltas instead of one chunk per step."""
    max_steps: int | None = None
    """Upper bound on the agent's steps per turn (at least 1)."""
    sync_memory: Annotated[SyncMemory, BeforeValidator(check_mode)] = "always"
    """When to bring a session's prompt in step with the agent's memory blocks:
    `"always"` (exact), `<seconds>`, `"process"` or `"never"` (`langchain_letta.memory`)."""
    background: bool = False
    """Run turns as Letta background runs: a dropped stream resumes (needs Redis)."""
    busy_timeout: float = 60.0
    """Seconds any wait of a turn may last (a busy conversation, a run being recovered)."""
    auxiliary: bool = False
    """Each call runs in a throwaway conversation (`langchain_letta.auxiliary`)."""
    conversation_id: str | None = None
    """A conversation fixed on the instance (used when the config names none)."""
    session_id: str | None = None
    """A session key fixed on the instance (used when the config names none)."""
    session_store: SessionStore | None = Field(default=None, exclude=True)
    """Where session keys map to conversations (default: on the Letta server)."""
    model_name: str | None = Field(default=None, alias="model")
    """A model handle to run the turns on, sent as Letta's `override_model` (unknown:
    `LettaNotFoundError`). Unset: the agent's model runs, its handle shown in traces."""
    temperature: float | None = None
    """Ignored, with a warning logged once: the agent's model settings govern."""
    max_tokens: int | None = None
    """Ignored, with a warning logged once: the agent's model settings govern."""
    stop: list[str] | None = None
    """Ignored, with a warning logged once: Letta has no stop sequences."""
    cache: BaseCache | bool | None = Field(default=False, exclude=True)
    """Off by default: a cached reply would skip storing the turn."""
    client: Letta | None = Field(default=None, exclude=True, repr=False)
    """A letta-client to use instead of building one."""
    async_client: AsyncLetta | None = Field(default=None, exclude=True, repr=False)
    """An async letta-client to use instead of building one."""

    _engine: TurnEngine = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        """Build the model; bad arguments raise `LettaInputError` before any request."""
        check_agent_id(kwargs.get("agent_id"))
        check_fixed_route(kwargs.get("conversation_id"), kwargs.get("session_id"))
        # credentials inside base_url are split off first (langchain_letta.connection)
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
        check_fixed_route(self.conversation_id, self.session_id)
        endpoint = resolve_endpoint(self.base_url, self.api_key)
        self.base_url, self.api_key = endpoint.url, endpoint.api_key
        self._engine = TurnEngine.connect(self, replace(endpoint, basic_auth=_BASIC_AUTH.get()))
        conversations = self._engine.conversations  # the clients given, or shared ones
        self.client, self.async_client = conversations.client, conversations.given_async_client
        say_ignored(self.__dict__, "at init")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose turns follow its own fields (it gets its own turn engine)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._engine = TurnEngine(copy, self._engine.conversations)
        return copy

    def _resolve_model_profile(self) -> ModelProfile | None:
        """Tool calling yes, native structured output no (see `langchain_letta.profile`)."""
        return letta_profile()

    @property
    def _llm_type(self) -> str:
        return "letta-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """`ChatLetta` serializes with `dumpd`; the API key is kept out as a secret."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """`["langchain_letta", "chat_models"]`."""
        return ["langchain_letta", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The API key is a secret, read from `LETTA_API_KEY`."""
        return {"api_key": "LETTA_API_KEY"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        names = ("agent_id", "base_url", "model_name", "stream_tokens", "max_steps")
        return {name: getattr(self, name) for name in names}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model") or self._engine.model_label()
        params = LangSmithParams(ls_provider="letta", ls_model_name=model, ls_model_type="chat")
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def get_num_tokens(self, text: str) -> int:
        """About how many tokens `text` takes (an estimate; see `langchain_letta.sizes`)."""
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """About how many tokens `messages` (and `tools`) take, without a tokenizer."""
        return estimate_call_tokens(messages, tools or [])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer `tools` to the agent as Letta client-side tools.

        When the agent calls one, the turn ends with `AIMessage.tool_calls`; answer with
        `ToolMessage` on the same session and the agent continues. `tool_choice` is not
        enforced (Letta's agent decides; any value but `"auto"` is logged once); a forcing
        one is asked for again after a reply in text (`langchain_letta.tool_choice`).

        Raises:
            LettaInputError: for a `response_format` (Letta takes none per request).

        """
        return self.bind(**tool_binding(tools, tool_choice, kwargs))

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable that answers with an instance of `schema`, through a client tool.

        The call is answered in the same turn, so the session is free after it.
        `"json_schema"` and `"json_mode"` use function calling too (logged once: Letta
        takes no response format); `strict` is ignored (`langchain_letta.client_tools`).

        Raises:
            LettaStructuredOutputError: when the agent answers without calling the
                tool (with `include_raw=True` it is returned as `parsing_error`).

        """
        if kwargs:
            raise LettaInputError(f"Unsupported arguments: {', '.join(sorted(kwargs))}.")
        return structured_output(self.bind_tools, schema, include_raw=include_raw, method=method)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _final(list(self._stream(messages, stop, run_manager, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = [chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)]
        return _final(chunks)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._engine.stream(messages, kwargs, stop):
            generation = ChatGenerationChunk(message=chunk)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=generation)
            yield generation

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._engine.astream(messages, kwargs, stop):
            generation = ChatGenerationChunk(message=chunk)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=generation)
            yield generation


def _final(chunks: list[ChatGenerationChunk]) -> ChatResult:
    """The merged reply, under the id of its closing chunk (the reply's id)."""
    result, reply_id = generate_from_stream(iter(chunks)), chunks[-1].message.id
    generation = result.generations[0]
    message = strip_indexes(generation.message)  # type: ignore[arg-type]
    if reply_id:
        message = message.model_copy(update={"id": reply_id})
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output=result.llm_output)
