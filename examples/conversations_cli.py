"""Manage an agent's conversations in the terminal: list, create, switch, rename, delete, chat.

Every conversation is its own thread on one Letta agent; all of them share the agent's
memory blocks. Replies stream token by token through ``ChatLetta``; history is paged
lazily, newest first, through ``LettaChatMessageHistory.aiter_messages``.

    python examples/conversations_cli.py --agent agent-...     # or pick the agent from a list
    python examples/conversations_cli.py --base-url http://127.0.0.1:8283 --page-size 20

Needs the ``examples`` extra (``pip install 'langchain-letta[examples]'``). Keyboard only:
the footer shows the keys; Tab moves between the conversation list and the message box.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import BaseMessage
from letta_client import AsyncLetta
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Label, ListItem, ListView, Static

from langchain_letta import ChatLetta, LettaChatMessageHistory

ROLES = {"human": "You", "ai": "Agent", "system": "System", "tool": "Tool"}


# --------------------------------------------------------------------------- widgets


class MessageView(Static):
    """One message of the thread; a streamed reply grows with :meth:`append`."""

    def __init__(self, role: str, text: str = "") -> None:
        super().__init__(classes=f"message {role}")
        self.role = role
        self.text = text
        self._render_text()

    def append(self, text: str) -> None:
        self.text += text
        self._render_text()

    def _render_text(self) -> None:
        # Text, not markup: "[long:8]" must show as typed.
        line = Text(f"{ROLES.get(self.role, self.role)}: ", style="bold")
        line.append(self.text)
        self.update(line)


class ChatLog(VerticalScroll):
    """The open conversation, oldest message at the top."""

    def clear_messages(self) -> None:
        self.remove_children()

    def show(self, message: BaseMessage, *, older: bool = False) -> None:
        view = MessageView(message.type, message.text or _describe(message))
        if older and self.children:
            self.mount(view, before=0)
        else:
            self.mount(view)
            self.scroll_end(animate=False)

    def start(self, role: str, text: str = "") -> MessageView:
        view = MessageView(role, text)
        self.mount(view)
        self.scroll_end(animate=False)
        return view


class ConversationItem(ListItem):
    """A conversation in the sidebar; the open one is marked with a triangle."""

    def __init__(self, conversation: Any) -> None:
        self.title = _title(conversation)
        self.conversation_id: str = conversation.id
        super().__init__(Label("  " + self.title, markup=False))

    def mark_open(self, is_open: bool) -> None:
        self.query_one(Label).update(Text(("▶ " if is_open else "  ") + self.title))


class MemoryPanel(VerticalScroll):
    """The agent's memory blocks (shared by every conversation)."""

    def show_blocks(self, blocks: list[Any]) -> None:
        self.remove_children()
        self.mount(Label("Memory blocks", classes="heading"))
        for block in blocks:
            self.mount(Static(Text(f"{block.label}: {block.value}"), classes="block"))


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (Enter accepts, Escape cancels)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            yield Input(value=self.value, id="answer")

    @on(Input.Submitted, "#answer")
    def accept(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question (y or Enter: yes; n or Escape: no)."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            yield Label("y = yes, n = no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class AgentPicker(ModalScreen[str]):
    """Choose the agent when none was given on the command line."""

    def __init__(self, agents: list[Any]) -> None:
        super().__init__()
        self.agents = agents

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Pick an agent (arrows, Enter)")
            yield ListView(
                *(ListItem(Label(f"{a.name}  {a.id}", markup=False)) for a in self.agents),
                id="agents",
            )

    @on(ListView.Selected, "#agents")
    def pick(self, event: ListView.Selected) -> None:
        self.dismiss(self.agents[event.list_view.index or 0].id)


# --------------------------------------------------------------------------- paging


class OlderMessages:
    """Pages back through a conversation, newest first, one request per page."""

    def __init__(self, history: LettaChatMessageHistory, page_size: int) -> None:
        self.page_size = page_size
        self._messages: AsyncIterator[BaseMessage] = history.aiter_messages(
            order="desc", page_size=page_size
        )
        self.exhausted = False
        self.started = asyncio.Event()  # set once the newest page is on screen

    async def next_page(self) -> list[BaseMessage]:
        """Up to ``page_size`` older messages, oldest first."""
        page: list[BaseMessage] = []
        while not self.exhausted and len(page) < self.page_size:
            try:
                page.append(await anext(self._messages))
            except StopAsyncIteration:
                self.exhausted = True
        return page[::-1]


# --------------------------------------------------------------------------- the app


class ConversationsApp(App[None]):
    """Conversations of one Letta agent."""

    TITLE = "Letta conversations"
    CSS = """
    #sidebar { width: 36; border-right: solid $primary; }
    #sidebar Label.heading, MemoryPanel Label.heading { text-style: bold; padding: 0 1; }
    #main { width: 1fr; }
    ChatLog { height: 1fr; padding: 0 1; }
    .message { margin-bottom: 1; }
    .message.human { color: $accent; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    MemoryPanel { width: 40; border-left: solid $primary; padding: 0 1; display: none; }
    MemoryPanel.shown { display: block; }
    .dialog { width: 90; height: auto; max-height: 20; border: thick $primary;
              background: $surface; padding: 1 2; }
    PromptScreen, ConfirmScreen, AgentPicker { align: center middle; }
    """
    BINDINGS = [
        Binding("ctrl+n", "new", "New", priority=True),
        Binding("ctrl+r", "rename", "Rename", priority=True),
        Binding("ctrl+t", "delete", "Delete", priority=True),
        Binding("ctrl+o", "older", "Load older", priority=True),
        Binding("ctrl+g", "memory", "Memory", priority=True),
        Binding("ctrl+l", "focus_list", "Conversations", priority=True),
        Binding("f5", "refresh", "Refresh"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, agent_id: str | None, base_url: str | None, page_size: int) -> None:
        super().__init__()
        self.agent_id = agent_id
        self.base_url = base_url
        self.page_size = page_size
        self.letta = AsyncLetta(base_url=base_url) if base_url else AsyncLetta()
        self.model: ChatLetta | None = None
        self.conversation_id: str | None = None
        self.older: OlderMessages | None = None
        self.summaries: dict[str, str] = {}
        self.replying = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Label("Conversations", classes="heading")
                yield ListView(id="conversations")
            with Vertical(id="main"):
                yield ChatLog(id="log")
                yield Static(id="status", markup=False)
                yield Input(placeholder="Message (Enter sends)", id="prompt")
            yield MemoryPanel(id="memory")
        yield Footer()

    async def on_mount(self) -> None:
        if self.agent_id is None:
            agents = [agent async for agent in self.letta.agents.list(limit=100)]
            if not agents:
                self.status("No agents on this server: create one, then pass --agent.")
                return
            self.push_screen(AgentPicker(agents), self.use_agent)
        else:
            self.use_agent(self.agent_id)

    def use_agent(self, agent_id: str | None) -> None:
        if agent_id is None:
            return
        self.agent_id = agent_id
        self.sub_title = agent_id
        self.model = ChatLetta(agent_id=agent_id, base_url=self.base_url, stream_tokens=True)
        self.query_one("#prompt", Input).focus()
        self.load_conversations(open_first=True)

    # ------------------------------------------------------------------ helpers

    def status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    @property
    def log_view(self) -> ChatLog:
        return self.query_one("#log", ChatLog)

    @property
    def sidebar(self) -> ListView:
        return self.query_one("#conversations", ListView)

    def history(self, conversation_id: str) -> LettaChatMessageHistory:
        assert self.agent_id is not None
        return LettaChatMessageHistory(
            conversation_id=conversation_id, agent_id=self.agent_id, base_url=self.base_url
        )

    # ------------------------------------------------------------------ conversations

    @work(exclusive=True, group="conversations")
    async def load_conversations(self, open_first: bool = False, select: str | None = None) -> None:
        conversations = list(
            await self.letta.conversations.list(
                agent_id=self.agent_id, order="desc", order_by="created_at", limit=100
            )
        )
        self.summaries = {c.id: c.summary or "" for c in conversations}
        sidebar = self.sidebar
        await sidebar.clear()
        await sidebar.extend(ConversationItem(c) for c in conversations)
        wanted = select or self.conversation_id
        ids = [c.id for c in conversations]
        if wanted in ids:
            sidebar.index = ids.index(wanted)
        for item in sidebar.query(ConversationItem):
            item.mark_open(item.conversation_id == self.conversation_id)
        if select is not None:
            self.open_conversation(select)
        elif open_first and conversations:
            self.open_conversation(conversations[0].id)
        elif self.conversation_id not in ids:
            self.close_conversation()
        self.status(f"{len(conversations)} conversation(s)")

    @on(ListView.Selected, "#conversations")
    def switch(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ConversationItem):
            self.open_conversation(event.item.conversation_id)
            self.query_one("#prompt", Input).focus()

    def close_conversation(self) -> None:
        self.conversation_id, self.older = None, None
        self.log_view.clear_messages()

    def open_conversation(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        for item in self.sidebar.query(ConversationItem):
            item.mark_open(item.conversation_id == conversation_id)
        self.older = OlderMessages(self.history(conversation_id), self.page_size)
        self.log_view.clear_messages()
        self.load_older()

    @work(exclusive=True, group="history")
    async def load_older(self) -> None:
        pager, conversation_id = self.older, self.conversation_id
        if pager is None:
            return
        if pager.exhausted:
            self.status("No older messages.")
            return
        self.status("Loading...")
        try:
            page = await pager.next_page()
        finally:
            pager.started.set()
        if conversation_id != self.conversation_id:
            return
        for message in reversed(page):
            self.log_view.show(message, older=True)
        more = "start of conversation" if pager.exhausted else "ctrl+o loads older"
        self.status(f"{len(page)} message(s) loaded, {more}")
        if len(self.log_view.children) == len(page):
            self.log_view.scroll_end(animate=False)

    def action_new(self) -> None:
        if self.agent_id is not None:
            self.push_screen(PromptScreen("Title of the new conversation:"), self.create)

    @work(group="conversations")
    async def create(self, title: str | None) -> None:
        if title is None:
            return
        created = await self.letta.conversations.create(agent_id=self.agent_id, summary=title)
        self.load_conversations(select=created.id)

    def action_rename(self) -> None:
        if self.conversation_id is None:
            return
        current = self.summaries.get(self.conversation_id, "")
        self.push_screen(PromptScreen("New title:", current), self.rename)

    @work(group="conversations")
    async def rename(self, title: str | None) -> None:
        if title is None or self.conversation_id is None:
            return
        if self.summaries.get(self.conversation_id, "").startswith("langchain-letta session: "):
            self.notify("This was a session's conversation; the session will start a new one.")
        await self.letta.conversations.update(self.conversation_id, summary=title)
        self.load_conversations()

    def action_delete(self) -> None:
        if self.conversation_id is not None:
            title = self.summaries.get(self.conversation_id) or self.conversation_id
            self.push_screen(ConfirmScreen(f"Delete {title!r}?"), self.delete)

    @work(group="conversations")
    async def delete(self, yes: bool | None) -> None:
        if not yes or self.conversation_id is None:
            return
        await self.letta.conversations.delete(self.conversation_id)
        self.close_conversation()
        self.load_conversations(open_first=True)

    def action_older(self) -> None:
        self.load_older()

    def action_refresh(self) -> None:
        self.load_conversations()

    def action_focus_list(self) -> None:
        self.sidebar.focus()

    # ------------------------------------------------------------------ memory

    def action_memory(self) -> None:
        panel = self.query_one(MemoryPanel)
        panel.toggle_class("shown")
        if panel.has_class("shown"):
            self.load_memory()

    @work(exclusive=True, group="memory")
    async def load_memory(self) -> None:
        assert self.agent_id is not None
        blocks = [block async for block in self.letta.agents.blocks.list(self.agent_id)]
        self.query_one(MemoryPanel).show_blocks(blocks)

    # ------------------------------------------------------------------ chat

    @on(Input.Submitted, "#prompt")
    def submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.model is None:
            return
        if self.conversation_id is None:
            self.notify("Create a conversation first (ctrl+n).", severity="warning")
            return
        if self.replying:
            self.notify("Wait for the reply to finish.", severity="warning")
            return
        event.input.clear()
        self.replying = True
        self.chat(self.conversation_id, text)

    @work(group="chat")
    async def chat(self, conversation_id: str, text: str) -> None:
        try:
            await self._chat(conversation_id, text)
        finally:
            self.replying = False

    async def _chat(self, conversation_id: str, text: str) -> None:
        assert self.model is not None
        log = self.log_view
        log.start("human", text)
        if self.older is not None:  # the newest page first, or it would repeat this turn
            await self.older.started.wait()
        reply = log.start("ai")
        self.status("Agent is replying...")
        config = {"configurable": {"conversation_id": conversation_id}}
        try:
            async for chunk in self.model.astream(text, config=config):
                if conversation_id == self.conversation_id and chunk.text:
                    reply.append(chunk.text)
                    log.scroll_end(animate=False)
        except Exception as error:  # shown, not raised: the app stays usable
            self.status(f"Error: {error}")
            self.notify(str(error), severity="error")
            return
        self.status("Ready.")


def _title(conversation: Any) -> str:
    created = conversation.created_at.strftime("%m-%d %H:%M") if conversation.created_at else ""
    return f"{conversation.summary or '(untitled)'}\n    {created} {conversation.id[5:13]}"


def _describe(message: BaseMessage) -> str:
    """A one-line stand-in for a message without text (e.g. a bare tool step)."""
    blocks = message.content if isinstance(message.content, list) else []
    kinds = sorted({b.get("type", "?") for b in blocks if isinstance(b, dict)})
    return f"({', '.join(kinds) or 'empty'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", help="agent id (default: pick from a list)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("LETTA_BASE_URL"),
        help="Letta server (default: $LETTA_BASE_URL, else Letta Cloud)",
    )
    parser.add_argument("--page-size", type=int, default=20, help="messages per page")
    args = parser.parse_args()
    ConversationsApp(args.agent, args.base_url, max(1, args.page_size)).run()


if __name__ == "__main__":
    main()
