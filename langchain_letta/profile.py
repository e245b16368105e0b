"""What ``ChatLetta`` can do, as a langchain-core ``ModelProfile``.

LangChain reads a chat model's ``profile`` to choose how to use it; ``create_agent``
reads ``structured_output`` to pick its ``response_format`` strategy. A Letta send has
no per-request response format, so structured output always goes through tool calling
(``ToolStrategy``): the profile says so, whatever model the agent runs.
"""

from __future__ import annotations

from langchain_core.language_models import ModelProfile

__all__ = ["letta_profile"]


def letta_profile(context_window: int | None = None) -> ModelProfile:
    """The capabilities of a Letta agent as ``ChatLetta`` exposes them.

    Args:
        context_window: the agent's context window in tokens, when known.

    """
    profile = ModelProfile(
        text_inputs=True,
        image_inputs=True,
        image_url_inputs=True,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        text_outputs=True,
        reasoning_output=True,
        tool_calling=True,
        tool_choice=False,  # Letta's send API has no tool_choice: the agent decides
        structured_output=False,  # no per-request response format: use tool calling
    )
    if context_window:
        profile["max_input_tokens"] = context_window
    return profile
