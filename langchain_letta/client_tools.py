"""LangChain tools as Letta client-side tools, and structured output through them.

Letta runs the agent's own tools on the server; tools bound with `bind_tools` are
client-side tools: the agent pauses at their call and the turn ends with
`AIMessage.tool_calls`. Structured output is a client-side tool whose call is
parsed (Letta takes no per-request response format).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel

from langchain_letta.errors import LettaInputError, LettaStructuredOutputError
from langchain_letta.messages import to_letta_messages
from langchain_letta.notices import say_tool_choice, warn_once
from langchain_letta.sizes import estimate_payload_tokens, estimate_text_tokens
from langchain_letta.tool_choice import forced_tools

__all__ = [
    "METHODS",
    "check_bind_kwargs",
    "client_tools",
    "estimate_call_tokens",
    "structured_output",
    "tool_binding",
]

METHODS = frozenset({"function_calling", "json_schema", "json_mode"})
ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


def check_bind_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse a `response_format` and drop `strict` from `bind_tools` keyword arguments.

    Raises:
        LettaInputError: for a `response_format`: a Letta send has no per-request
            response format; ask for structured output through tool calling
            (`create_agent(response_format=ToolStrategy(Schema))`).

    """
    if kwargs.pop("response_format", None) is not None:
        raise LettaInputError(
            "Letta has no per-request response format, so ChatLetta cannot honour "
            "bind_tools(response_format=...). Ask for structured output through tool "
            "calling: create_agent(response_format=ToolStrategy(Schema)) or "
            "model.with_structured_output(Schema). Nothing was sent."
        )
    kwargs.pop("strict", None)  # OpenAI's strict schemas: Letta has no such switch


def client_tools(tools: Sequence[ToolLike]) -> list[dict[str, Any]]:
    """`tools` as Letta client-side tool definitions (name, description, JSON schema)."""
    converted = []
    for tool in tools:
        function = convert_to_openai_tool(tool)["function"]
        converted.append(
            {
                "name": function["name"],
                "description": function.get("description") or "",
                "parameters": function.get("parameters") or {"type": "object"},
            }
        )
    return converted


def tool_binding(
    tools: Sequence[ToolLike], tool_choice: Any, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments `bind_tools` binds: the Letta client tools, and the rest.

    A `tool_choice` that forces a tool is kept for asking again after a reply in text
    (`langchain_letta.tool_choice`); any choice but `"auto"` is said once in the log.
    """
    check_bind_kwargs(kwargs)
    offered = client_tools(tools)
    forced = forced_tools(tool_choice, [tool["name"] for tool in offered])
    if forced:
        kwargs["letta_forced_tools"] = forced
    say_tool_choice(tool_choice, forced)
    return {"client_tools": offered, **kwargs}


def estimate_call_tokens(messages: Sequence[BaseMessage], tools: Sequence[Any]) -> int:
    """About how many tokens `messages` and `tools` take (`langchain_letta.sizes`)."""
    total = estimate_payload_tokens(to_letta_messages(messages)) if messages else 0
    for tool in tools:
        total += estimate_text_tokens(str(convert_to_openai_tool(tool)))
    return total


def structured_output(
    bind_tools: Callable[..., Runnable[LanguageModelInput, AIMessage]],
    schema: dict[str, Any] | type,
    *,
    include_raw: bool,
    method: Literal["function_calling", "json_schema", "json_mode"],
) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
    """A runnable that answers with an instance of `schema`, through a client-side tool.

    `bind_tools` is the model's; the tool's call is required (else
    `LettaStructuredOutputError`) and parsed against `schema`.
    """
    if method not in METHODS:
        raise LettaInputError(f"Unknown structured-output method {method!r}.")
    if method != "function_calling":
        warn_once(
            f"with_structured_output(method={method!r}): Letta's Conversations API takes "
            'no per-request response format; using method="function_calling".'
        )
    tool_name = str(convert_to_openai_tool(schema)["function"]["name"])
    bound = bind_tools(
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
