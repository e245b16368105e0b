"""Shared memory blocks reaching every session's prompt, live against the real server.

The fake LLM answers ``[memory:human]`` with the ``human`` block of the system prompt
it was shown, so each reply says which blocks the conversation's prompt holds.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from letta_client import Letta

from langchain_letta import ChatLetta, LettaInputError, state

pytestmark = pytest.mark.live


def session(key: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"session_id": key}}


def counted_model(base_url: str, agent_id: str, **kwargs: object) -> tuple[ChatLetta, list[str]]:
    """A ``ChatLetta`` and the list of requests it makes (method and path)."""
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    client = Letta(
        base_url=base_url, max_retries=0, http_client=httpx.Client(event_hooks={"request": [count]})
    )
    return ChatLetta(agent_id=agent_id, base_url=base_url, client=client, **kwargs), seen


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process knows of memory, as a new process would."""
    state.MEMORY_CHECKS.clear()


def human(model: ChatLetta, key: str, **kwargs: object) -> str:
    return model.invoke("[memory:human]", config=session(key), **kwargs).text


def test_what_the_agent_writes_in_one_session_reaches_the_others(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    assert human(model, "bob") == "Memory human=Name: Ada"
    edit = {"label": "human", "old_string": "Name: Ada", "new_string": "Name: Ada Lovelace"}

    model.invoke(f"[tool:memory_replace {json.dumps(edit)}]", config=session("alice"))

    assert letta.agents.blocks.retrieve("human", agent_id=agent_id).value == "Name: Ada Lovelace"
    assert human(model, "bob") == "Memory human=Name: Ada Lovelace"
    assert human(model, "alice") == "Memory human=Name: Ada Lovelace"


def test_process_mode_checks_memory_only_when_it_may_have_changed(
    base_url: str, agent_id: str
) -> None:
    model, seen = counted_model(base_url, agent_id, sync_memory="process")
    model.invoke("first", config=session("carol"))  # created here: holds the current blocks
    seen.clear()

    model.invoke("warm", config=session("carol"))
    assert seen == [f"POST /v1/conversations/{conversation(model, 'carol')}/messages"]

    seen.clear()
    model.invoke('[tool:conversation_search {"query": "warm"}]', config=session("carol"))
    model.invoke("after a tool", config=session("carol"))
    conv = conversation(model, "carol")
    assert seen == [
        f"POST /v1/conversations/{conv}/messages",
        f"GET /v1/agents/{agent_id}",  # the blocks: unchanged, so no recompile
        f"GET /v1/conversations/{conv}/messages",  # its prompt, compiled at creation
        f"POST /v1/conversations/{conv}/messages",
    ]


def test_a_resumed_session_sees_blocks_edited_while_it_was_away(
    base_url: str, agent_id: str, letta: Letta, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, sync_memory="process")
    assert human(model, "dave") == "Memory human=Name: Ada"
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")

    # "process" does not see an edit made outside this process's turns until ...
    assert human(model, "dave") == "Memory human=Name: Ada"
    # ... the session's first turn in a new process.
    new_process(monkeypatch)
    restarted, seen = counted_model(base_url, agent_id, sync_memory="process")
    assert human(restarted, "dave") == "Memory human=Name: Grace"
    assert f"POST /v1/conversations/{conversation(restarted, 'dave')}/recompile" in seen

    seen.clear()  # unchanged blocks are not recompiled again
    new_process(monkeypatch)
    again = ChatLetta(
        agent_id=agent_id, base_url=base_url, client=restarted.client, sync_memory="process"
    )
    assert human(again, "dave")
    assert not [request for request in seen if request.endswith("/recompile")]


def test_the_default_sees_an_api_edit_at_an_existing_sessions_next_turn(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model, seen = counted_model(base_url, agent_id)
    assert human(model, "judy") == "Memory human=Name: Ada"
    assert human(model, "judy") == "Memory human=Name: Ada"  # the prompt's blocks now known
    conv = conversation(model, "judy")
    seen.clear()

    assert human(model, "judy") == "Memory human=Name: Ada"  # unchanged: no recompile
    assert seen == [f"GET /v1/agents/{agent_id}", f"POST /v1/conversations/{conv}/messages"]
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")
    seen.clear()
    assert human(model, "judy") == "Memory human=Name: Grace"
    assert seen == [
        f"GET /v1/agents/{agent_id}",
        f"POST /v1/conversations/{conv}/recompile",
        f"POST /v1/conversations/{conv}/messages",
    ]


def test_bounded_staleness_checks_at_most_that_often(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model, seen = counted_model(base_url, agent_id, sync_memory=3600)
    assert human(model, "kim") == "Memory human=Name: Ada"
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")
    seen.clear()

    assert human(model, "kim") == "Memory human=Name: Ada"  # checked less than an hour ago
    assert not [request for request in seen if request.startswith("GET /v1/agents/")]
    assert human(model, "kim", sync_memory=0.001) == "Memory human=Name: Grace"


def test_always_sees_an_edit_made_anywhere_at_the_next_turn(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, sync_memory="always")
    assert human(model, "erin") == "Memory human=Name: Ada"

    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")

    assert human(model, "erin") == "Memory human=Name: Grace"


async def test_the_async_path_checks_the_same_way(
    base_url: str, agent_id: str, letta: Letta, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, sync_memory="process")
    first = await model.ainvoke("[memory:human]", config=session("ivan"))
    assert first.text == "Memory human=Name: Ada"
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")

    always = await model.ainvoke("[memory:human]", config=session("ivan"), sync_memory="always")
    assert always.text == "Memory human=Name: Grace"
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Hopper")
    new_process(monkeypatch)  # first contact: the prompt is read and found behind
    resumed = await model.ainvoke("[memory:human]", config=session("ivan"))
    assert resumed.text == "Memory human=Name: Hopper"


def test_never_keeps_the_blocks_a_conversation_started_with(
    base_url: str, agent_id: str, letta: Letta, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatLetta(agent_id=agent_id, base_url=base_url, sync_memory="never")
    assert human(model, "frank") == "Memory human=Name: Ada"
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")
    new_process(monkeypatch)

    assert human(model, "frank") == "Memory human=Name: Ada"
    assert human(model, "grace") == "Memory human=Name: Grace"  # a new session: current blocks


def test_an_unknown_mode_is_refused_before_anything_is_sent(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    model, seen = counted_model(base_url, agent_id)

    with pytest.raises(LettaInputError, match="sync_memory must be one of always, process, never"):
        model.invoke("hi", config=session("heidi"), sync_memory=True)

    assert seen == []
    assert not list(letta.conversations.list(agent_id=agent_id, limit=10))


def conversation(model: ChatLetta, key: str) -> str:
    return str(model._engine.placement.resolver.resolve(key))


def test_the_first_turn_reads_the_agent_and_its_blocks_in_one_request(
    base_url: str, agent_id: str
) -> None:
    model, seen = counted_model(base_url, agent_id)

    assert human(model, "lena") == "Memory human=Name: Ada"

    assert seen.count(f"GET /v1/agents/{agent_id}") == 1


def test_a_history_with_its_system_prompt_shows_the_current_blocks(
    base_url: str, agent_id: str, letta: Letta
) -> None:
    from langchain_letta import LettaChatMessageHistory

    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    assert human(model, "mona") == "Memory human=Name: Ada"
    history = LettaChatMessageHistory(
        session_id="mona", agent_id=agent_id, base_url=base_url, include_system=True
    )
    assert "Name: Ada" in history.messages[0].text
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")

    assert "Name: Grace" in history.messages[0].text
    assert (
        "Name: Grace"
        in LettaChatMessageHistory(
            session_id="mona", agent_id=agent_id, base_url=base_url, include_system=True
        )
        .messages[0]
        .text
    )


def counted_clients(
    base_url: str, seen: list[str], who: str, threads: list[str] | None = None
) -> dict[str, object]:
    """A sync and an async letta-client that log each request as ``who METHOD path``."""
    threads = [] if threads is None else threads

    def count(request: httpx.Request) -> None:
        seen.append(f"{who} {request.method} {request.url.path}")
        threads.append(threading.current_thread().name)

    async def acount(request: httpx.Request) -> None:
        count(request)

    from letta_client import AsyncLetta

    return {
        "client": Letta(
            base_url=base_url,
            max_retries=0,
            http_client=httpx.Client(event_hooks={"request": [count]}),
        ),
        "async_client": AsyncLetta(
            base_url=base_url,
            max_retries=0,
            http_client=httpx.AsyncClient(event_hooks={"request": [acount]}),
        ),
    }


@pytest.mark.parametrize("run", ["sync", "async"])
@pytest.mark.parametrize("mode", ["always", "process"])
async def test_a_chain_turn_reads_the_blocks_alongside_its_history_read(
    base_url: str,
    agent_id: str,
    letta: Letta,
    run: str,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_core.runnables.history import RunnableWithMessageHistory

    from langchain_letta import LettaChatMessageHistory, prefetch

    monkeypatch.setattr(prefetch, "_SEQUENTIAL", threading.Event())  # as outside cassettes
    seen: list[str] = []
    threads: list[str] = []
    model = ChatLetta(
        agent_id=agent_id,
        base_url=base_url,
        sync_memory=mode,
        **counted_clients(base_url, seen, "model"),  # type: ignore[arg-type]
    )
    chain = RunnableWithMessageHistory(
        model,
        lambda key: LettaChatMessageHistory(
            session_id=key,
            agent_id=agent_id,
            base_url=base_url,
            **counted_clients(base_url, seen, "history", threads),  # type: ignore[arg-type]
        ),
    )

    async def turn(text: str) -> str:
        config = session("nina")
        if run == "sync":
            return str(chain.invoke(text, config=config).text)
        return str((await chain.ainvoke(text, config=config)).text)

    await turn("one")
    await turn("two")  # the turn the history's next read is for checked every turn (or not)
    letta.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace")
    seen.clear()
    threads.clear()

    reply = await turn("[memory:human]")

    agent_reads = [request for request in seen if request.endswith(f"/v1/agents/{agent_id}")]
    conv = conversation(model, "nina")
    if mode == "always":  # exact: read by the history, alongside its own read, used by the turn
        assert agent_reads == [f"history GET /v1/agents/{agent_id}"]
        if run == "sync":  # alongside: on a thread of its own (async: a task on the loop)
            assert threads[seen.index(agent_reads[0])] == "langchain-letta-blocks"
        assert reply == "Memory human=Name: Grace"
        assert [r for r in seen if r.startswith("model")] == [
            f"model POST /v1/conversations/{conv}/recompile",  # the blocks changed
            f"model POST /v1/conversations/{conv}/messages",
        ]
        seen.clear()
        await turn("unchanged")
        assert [r for r in seen if r.startswith("model")] == [
            f"model POST /v1/conversations/{conv}/messages"
        ]
        assert [r for r in seen if "/v1/agents/" in r] == [f"history GET /v1/agents/{agent_id}"]
    else:  # process-local: neither the history nor the turn reads the blocks
        assert agent_reads == []
        assert reply == "Memory human=Name: Ada"


def test_a_plain_history_read_does_not_read_the_blocks(base_url: str, agent_id: str) -> None:
    from langchain_letta import LettaChatMessageHistory

    seen: list[str] = []
    model = ChatLetta(agent_id=agent_id, base_url=base_url)
    model.invoke("one", config=session("olga"))
    model.invoke("two", config=session("olga"))
    history = LettaChatMessageHistory(
        session_id="olga",
        agent_id=agent_id,
        base_url=base_url,
        **counted_clients(base_url, seen, "history"),  # type: ignore[arg-type]
    )

    assert len(history.messages) == 4
    assert not [request for request in seen if "/v1/agents/" in request]
