"""What a Letta agent can do, declared once for LangChain's standard unit and integration tests."""

from __future__ import annotations

from langchain_letta import ChatLetta


class LettaCapabilities:
    """Capability flags shared by both standard test classes (put it first in the bases)."""

    @property
    def chat_model_class(self) -> type[ChatLetta]:
        return ChatLetta

    @property
    def has_tool_choice(self) -> bool:
        return False  # Letta's send API has no tool_choice: the agent decides

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True
