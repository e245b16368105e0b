"""Writing to a history: Letta stores a message only by running the agent on it.

So `LettaChatMessageHistory.add_messages` writes nothing. The turns it is given under
`RunnableWithMessageHistory` are already stored (`ChatLetta` sent them), and a message
Letta did not store is refused with `LettaHistoryWriteError` instead of being dropped
silently: no part of the batch is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from langchain_letta.errors import LettaHistoryWriteError
from langchain_letta.to_letta import not_stored

__all__ = ["check_stored"]


def check_stored(messages: Sequence[BaseMessage], conversation_id: str | None) -> None:
    """Refuse `messages` unless Letta stored every one in the conversation.

    Raises:
        LettaHistoryWriteError: a message Letta did not store (nothing is written).

    """
    unstored = not_stored(messages, conversation_id)
    if unstored:
        kinds = ", ".join(sorted({message.type for message in unstored}))
        raise LettaHistoryWriteError(
            f"{len(unstored)} message(s) ({kinds}) are not stored in the Letta "
            "conversation, and Letta stores a message only by running the agent on it. "
            "Send user turns through ChatLetta; nothing was written."
        )
