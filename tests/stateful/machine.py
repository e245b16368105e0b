"""A model-based test of the paths users walk, live against the real local Letta server.

``UserPaths`` is a hypothesis ``RuleBasedStateMachine``. Each example makes two fresh
agents (``A`` and ``B``) and draws operations on a few session keys of them: turns
through every entry point and routing key, ``RunnableWithMessageHistory``, LangGraph,
client tools, structured output, ``max_steps=1`` tool steps, slow turns under
``with_retry`` / ``with_fallbacks``, cut and abandoned streams, ``history.clear()``,
server-side deletes and renames, block edits, explicit compaction and the server's own
(agent ``B`` has a small context window; long turns fill it), restarts, odd session keys
(``\\``, ``%``, ``_``, unicode, near the length limit, prefixes of each other) and refused
ones (a NUL, too long), and clients that carry the API key inside ``base_url``
(``user:key@host``, ``?api_key=``). After every step
it checks the package's promises against the raw server (see :meth:`UserPaths.promises`):

1. every user turn the caller was told succeeded is stored exactly once, in order, in
   the conversation the key names (a fresh process's resolution); one reported failed
   with ``turn_stored=False`` is not stored, one of unknown outcome at most once;
2. every session accepts its next turn (each plain turn asserts it; the teardown sends
   one more turn to every session);
3. ``history.messages`` of the long-lived history each session has in the running
   process equals a fresh process's read;
4. memory: a turn's prompt holds the agent's current blocks (``FUZZ_MEMORY_PROMISE``:
   ``exact`` = any edit made before the turn, the default's promise; ``tools`` = only
   edits the agent made with its memory tools in this process);
5. nothing but the package's typed errors escapes, and the API key never shows in a log
   record, a repr or an error (as given, or in the basic ``Authorization`` header a
   ``user:key@`` URL becomes).

Known bugs whose fixes have not landed make some operations fail every time; they are
listed in :data:`KNOWN_BUGS` (operation -> issue item) and left out of the drawn
operations unless ``FUZZ_KNOWN_BUGS=run``. Their plain reproductions live in
``test_found_bugs.py``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse, urlsplit, urlunsplit

import letta_client
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from langchain_core.exceptions import LangChainException
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from letta_client import Letta
from pydantic import BaseModel

from langchain_letta import ChatLetta, LettaChatMessageHistory
from langchain_letta.errors import LettaInputError, LettaRunError
from langchain_letta.messages import SYSTEM_ALERTS_KEY as ALERTS
from tests.fault_proxy import FaultProxy
from tests.stateful import oracle, processes
from tests.stateful.oracle import Expect

MODEL_HANDLE = "openai-proxy/fake-llm"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
SECRET = "lsk-STATEFUL-7f3a9c-NEVER-SHOWN"  # the local server ignores it; nothing may show it
URL_USER = "stateful"  # the user of the credentials some clients carry inside their base_url
# The forms the secret may take on its way out: as given, and in a basic Authorization header.
SECRET_FORMS = (SECRET, base64.b64encode(f"{URL_USER}:{SECRET}".encode()).decode())
# How a client gets the secret: api_key=, inside base_url as user:password@, or as ?api_key=.
CONNECTS = ["api_key", "userinfo", "query"]
SMALL_CONTEXT = 2000  # agent B's context window: the server compacts its conversations itself
BUSY_TIMEOUT = 20.0
STEP_TIMEOUT = 2 * BUSY_TIMEOUT + 30  # a step that takes longer is reported as stuck

# Operation variant -> the known bug that breaks it today (issue N item M).
KNOWN_BUGS: dict[str, str] = {
    "server_side:rename": "issue 13 (documented limitation): a conversation whose summary is "
    "renamed by hand is not noticed by a warm cache; this process's history and next turn "
    "stay on it",
}
MEMORY_PROMISE = os.environ.get("FUZZ_MEMORY_PROMISE", "exact")
RUN_KNOWN_BUGS = os.environ.get("FUZZ_KNOWN_BUGS", "skip") == "run"
EXTRA_DISABLED = {name for name in os.environ.get("FUZZ_DISABLE", "").split(",") if name}


ONLY = {name for name in os.environ.get("FUZZ_ONLY", "").split(",") if name}
_ALWAYS = {"turn", "route"}  # plain turns are drawn even under FUZZ_ONLY


def enabled(variant: str) -> bool:
    """Whether the run draws ``variant`` (``rule`` or ``rule:variant``)."""
    rule_name = variant.split(":")[0]
    if variant in EXTRA_DISABLED or rule_name in EXTRA_DISABLED:
        return False
    if ONLY and not {variant, rule_name} & (ONLY | _ALWAYS):
        return False
    return RUN_KNOWN_BUGS or variant not in KNOWN_BUGS


# Discovery mode (FUZZ_DISCOVER=1): operation -> the first failure it caused; each is
# then left out so that the run goes on to find the next bug.
DISCOVERED: dict[str, tuple[list[str], str]] = {}


def gate(name: str) -> Any:
    """A rule drawn only while ``name`` is enabled."""
    return precondition(lambda self: enabled(name))


def variants(rule_name: str, names: list[str]) -> st.SearchStrategy[str]:
    """The enabled variants of a rule (``rule:variant`` names in :data:`KNOWN_BUGS`)."""
    kept = [name for name in names if enabled(f"{rule_name}:{name}")]
    return st.sampled_from(kept) if kept else st.nothing()


def disabled() -> dict[str, str]:
    """The known-bug operation variants this run leaves out, with the reason."""
    out = {name: reason for name, reason in KNOWN_BUGS.items() if not RUN_KNOWN_BUGS}
    out.update({name: "FUZZ_DISABLE" for name in EXTRA_DISABLED})
    if ONLY:
        out["*"] = f"FUZZ_ONLY={','.join(sorted(ONLY))}"
    return out


# --------------------------------------------------------------------------- counters


@dataclass
class Stats:
    """What a run did, printed at the end of the CI run and written by ``make fuzz``."""

    examples: int = 0
    steps: int = 0
    checks: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_failure: tuple[list[str], str] | None = None
    deadline: float = float("inf")  # time.monotonic() after which no example starts
    last_operation: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "steps": self.steps,
            "checks": self.checks,
            "rules": dict(sorted(self.rules.items())),
            "typed_errors_seen": dict(sorted(self.errors.items())),
        }


STATS = Stats()


def step(function: Callable[..., None]) -> Callable[..., None]:
    """Log a rule (or the invariant) as a line of Python; keep the first failure's log."""

    @functools.wraps(function)
    def logged(self: UserPaths, **arguments: Any) -> None:
        shown = ", ".join(f"{name}={value!r}" for name, value in sorted(arguments.items()))
        line = f"state.{function.__name__}({shown})"
        if self.skip:
            return
        if function.__name__ != "promises":  # the invariant runs after every step
            self.log.append(line)
        try:
            function(self, **arguments)
        except UnsatisfiedAssumption:
            raise
        except BaseException as error:
            self.failed = True
            if function.__name__ == "promises":
                self.log.append(line)
            if STATS.first_failure is None:
                STATS.first_failure = (list(self.log), f"{type(error).__name__}: {error}")
            raise

    return logged


# --------------------------------------------------------------------------- secrets


class SecretWatch(logging.Handler):
    """Remembers every log record that shows the secret."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format is not a leak
            return
        if shows_secret(text):
            self.leaks.append(f"{record.name}: {text[:300]}")


WATCH = SecretWatch()
_WATCHED = ("", "letta_client", "httpx", "langchain_letta", "langchain_core")


@contextlib.contextmanager
def watching_logs() -> Iterator[SecretWatch]:
    """Capture DEBUG records of letta-client, httpx and the package for the run."""
    loggers = [logging.getLogger(name) for name in _WATCHED]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(WATCH)
        if logger.name != "root":  # kept out of pytest's log capture: it is all DEBUG noise
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
    try:
        yield WATCH
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(WATCH)
            logger.setLevel(level)
            logger.propagate = propagate


def shows_secret(text: str) -> bool:
    return any(form in text for form in SECRET_FORMS)


def connect_options(url: str, how: str) -> dict[str, Any]:
    """The ``base_url`` and ``api_key`` of a client that gets the secret ``how``."""
    if how == "userinfo":
        parts = urlsplit(url)
        netloc = f"{URL_USER}:{SECRET}@{parts.netloc}"
        return {"base_url": urlunsplit((parts.scheme, netloc, parts.path, "", ""))}
    if how == "query":
        return {"base_url": f"{url}?api_key={SECRET}"}
    return {"base_url": url, "api_key": SECRET}


def error_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_typed(error: BaseException) -> bool:
    """The package's own errors and langchain-core's (what callers are told to catch)."""
    return isinstance(error, LangChainException) or type(error).__module__.startswith(
        "langchain_letta"
    )


# --------------------------------------------------------------------------- world


def base_url() -> str:
    from tests.conftest import live_base_url

    return live_base_url()


_PROXY: FaultProxy | None = None


def proxy() -> FaultProxy:
    global _PROXY
    if _PROXY is None:
        _PROXY = FaultProxy(urlparse(base_url()).port or 80, mode="cut_streams")
    return _PROXY


class Answer(BaseModel):
    """The structured answer."""

    answer: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@dataclass
class AgentModel:
    """What the model knows of one agent's conversations."""

    name: str
    id: str
    convs: dict[str, list[Expect]] = field(default_factory=dict)  # conversation -> user turns
    keys: dict[str, str | None] = field(default_factory=dict)  # key -> conversation (None: new)
    floating: list[str] = field(default_factory=list)  # maybe-stored unkeyed turns, place unknown
    pending: dict[str, list[str]] = field(default_factory=dict)  # same, of keys not mapped yet
    api_edited: bool = False


@dataclass
class Outcome:
    reply: Any = None
    error: BaseException | None = None

    @property
    def stored(self) -> bool | None:
        """What the caller was told: stored, not stored, or unknown (``None``)."""
        if self.error is None:
            return True
        return getattr(self.error, "turn_stored", None)


@dataclass
class Thread:
    """A checkpointed graph thread: the conversation its key named when it started, the
    conversation its last turn went to (a branch of the first, or the first), and how
    many user turns that conversation then held."""

    root: str
    conversation: str
    length: int


# Session keys: prefixes of each other (k1, k10, k1%), LIKE wildcards and its escape
# character, unicode, and one close to the longest key allowed (512 characters).
ODD_KEY = "A/k1\\%_ü日🙂"
LONG_KEY = "A/L" + "é∂\\%_" * 99
SESSIONS = ["A/k1", "A/k10", "B/k1", "A/k1%", ODD_KEY, LONG_KEY]
GRAPH_SESSIONS = ["A/g1"]
ROUTES = ["session_id", "thread_id", "conversation_id", "unkeyed"]
ENTRIES = ["invoke", "stream", "ainvoke", "astream", "batch", "abatch", "generate"]
WORDS = ["hi", "hello", "same again", "what now?", "ok"]


def _texts() -> st.SearchStrategy[str]:
    """Repeated texts on purpose (a turn's identity is not its text), and fresh ones."""
    return st.one_of(st.sampled_from(WORDS), st.integers(0, 999).map(lambda n: f"note {n}"))


class UserPaths(RuleBasedStateMachine):
    """Two agents, a few sessions, every way in; the promises checked after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.url = base_url()
        self.letta = Letta(base_url=self.url, max_retries=0)
        self.prefix = uuid.uuid4().hex[:8]
        self.agents: dict[str, AgentModel] = {}
        self.models: dict[tuple[str, str], ChatLetta] = {}
        self.histories: dict[str, LettaChatMessageHistory] = {}
        self.checkpointers: dict[str, Any] = {}
        self.threads: dict[str, Thread] = {}
        self.touched: set[str] = set()
        self.counter = itertools.count()
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.log = ["state = UserPaths()"]
        self.failed = False  # a failed step skips the closing checks (they would mask it)
        self.skip = False  # set when the example starts after the time budget

    # ------------------------------------------------------------------ setup

    @initialize()
    @step
    def make_agents(self) -> None:
        if STATS.first_failure is None and time.monotonic() > STATS.deadline:
            self.skip = True  # out of budget: this example's steps do nothing (a reject or
            return  # an exception here made hypothesis report its data as flaky)
        STATS.examples += 1
        for name in ("A", "B"):
            small = {"context_window_limit": SMALL_CONTEXT} if name == "B" else {}
            agent = self.letta.agents.create(
                name=f"lc-stateful-{self.prefix}-{name}",
                model=MODEL_HANDLE,
                embedding=EMBEDDING_HANDLE,
                **small,
                memory_blocks=[
                    {"label": "human", "value": "Name: Ada"},
                    {"label": "persona", "value": "A concise assistant."},
                ],
            )
            self.agents[name] = AgentModel(name, agent.id)

    def teardown(self) -> None:
        try:
            if self.agents and not self.failed:
                self.log.append("state.teardown()")
                try:
                    self._settle()
                except BaseException as error:
                    if STATS.first_failure is None:
                        STATS.first_failure = (list(self.log), f"{type(error).__name__}: {error}")
                    raise
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            for agent in self.agents.values():
                with contextlib.suppress(Exception):
                    self.letta.agents.delete(agent.id)

    def _settle(self) -> None:
        """Promise 2 for every session, then every promise over every conversation."""
        for session in SESSIONS + GRAPH_SESSIONS:
            agent, key = self._split(session)
            if key in agent.keys or session in GRAPH_SESSIONS:
                text, model = f"last {next(self.counter)}", self._model(agent)
                config = self._cfg(session)
                reply = self._call(functools.partial(model.invoke, text, config))
                self._landed(agent, key, "session_id", reply, text)
        for agent in self.agents.values():
            self._check_agent(agent, every=True)
        for session in SESSIONS:
            self._check_history(session)

    # ------------------------------------------------------------------ helpers

    def _split(self, session: str) -> tuple[AgentModel, str]:
        name, key = session.split("/", 1)
        return self.agents[name], f"{self.prefix}-{key}"

    def _model(
        self, agent: AgentModel, flavour: str = "plain", connect: str = "api_key"
    ) -> ChatLetta:
        """One ``ChatLetta`` per agent, flavour and connect (new after a restart)."""
        found = self.models.get((agent.name, flavour, connect))
        if found is None:
            options: dict[str, Any] = {"busy_timeout": BUSY_TIMEOUT}
            if flavour == "background":
                options["background"] = True
            elif flavour == "tokens":
                options["stream_tokens"] = True
            elif flavour == "short-timeout":
                options["timeout"] = 1.0
            elif flavour.startswith("proxy"):
                options["background"] = flavour == "proxy-background"
                found = ChatLetta(
                    agent_id=agent.id, base_url=proxy().base_url, api_key=SECRET, **options
                )
            found = found or ChatLetta(
                agent_id=agent.id, **connect_options(self.url, connect), **options
            )
            self._no_secret_in(repr(found), str(found), found.model_dump())
            self.models[(agent.name, flavour, connect)] = found
        return found

    def _history(
        self, agent: AgentModel, key: str, connect: str = "api_key"
    ) -> LettaChatMessageHistory:
        return LettaChatMessageHistory(
            session_id=key, agent_id=agent.id, **connect_options(self.url, connect)
        )

    def _live_history(self, session: str) -> LettaChatMessageHistory:
        """The long-lived history this process keeps for a session (as a web app would)."""
        if session not in self.histories:
            agent, key = self._split(session)
            self.histories[session] = self._history(agent, key, "userinfo")
            self._no_secret_in(repr(self.histories[session]))
        return self.histories[session]

    def _cfg(self, session: str, route: str = "session_id") -> dict[str, Any]:
        agent, key = self._split(session)
        if route == "conversation_id" and agent.keys.get(key):
            return {"configurable": {"conversation_id": agent.keys[key]}}
        if route == "thread_id":
            return {"configurable": {"thread_id": key}}
        if route == "unkeyed":
            return {}
        return {"configurable": {"session_id": key}}

    def _run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in this example's worker thread; a step that hangs is a failure."""
        future = self.pool.submit(fn)
        try:
            return future.result(timeout=STEP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            self.pool = concurrent.futures.ThreadPoolExecutor(1)  # the stuck one stays stuck
            message = f"promise 2: the step hung for more than {STEP_TIMEOUT} s"
            raise AssertionError(message) from None

    def _call(self, fn: Callable[[], Any]) -> Any:
        """A call that must succeed (promise 2); any error fails the example."""
        outcome = self._try(fn)
        if outcome.error is not None:
            error = outcome.error
            raise AssertionError(
                f"promise 2: the session refused its turn: {type(error).__name__}: {error}"
            ) from error
        return outcome.reply

    def _try(self, fn: Callable[[], Any]) -> Outcome:
        """A call that may fail, but only with a typed error showing no secret (promise 5)."""
        try:
            return Outcome(reply=self._run(fn))
        except AssertionError:
            raise
        except Exception as error:
            for link in error_chain(error):
                self._no_secret_in(str(link), repr(link))
            if not is_typed(error):
                raise AssertionError(f"promise 5: an untyped error escaped: {error!r}") from error
            STATS.errors[type(error).__name__] += 1
            return Outcome(error=error)

    def _no_secret_in(self, *shown: Any) -> None:
        STATS.checks += 1
        for text in shown:
            assert not shows_secret(str(text)), f"promise 5: the API key shows in {str(text)[:200]}"

    def _note(self, session: str, name: str) -> None:
        if name in DISCOVERED:
            reject()  # discovery mode: this operation already broke a promise in this run
        STATS.last_operation = name
        STATS.steps += 1
        STATS.rules[name] += 1
        self.touched.add(session)

    # ------------------------------------------------------------------ bookkeeping

    def _landed(
        self, agent: AgentModel, key: str | None, route: str, reply: Any, text: str
    ) -> None:
        """A turn the caller was told succeeded: record where the reply says it went."""
        conversation = (getattr(reply, "response_metadata", None) or {}).get("conversation_id")
        assert conversation, f"a reply without its conversation id: {reply!r}"
        self._place(agent, key, route, conversation, Expect(text))

    def _place(
        self, agent: AgentModel, key: str | None, route: str, conversation: str, turn: Expect
    ) -> None:
        if route == "unkeyed" or key is None:
            assert conversation not in agent.convs, (
                f"promise 1: an unkeyed turn went to an existing conversation {conversation}"
            )
            agent.convs[conversation] = [turn]
            return
        known = agent.keys.get(key)
        if known is None:
            assert conversation not in agent.convs, (
                f"promise 1: key {key!r} no longer names {conversation}, yet the turn went there"
            )
            self._map(agent, key, conversation)
        else:
            assert conversation == known, (
                f"promise 1: key {key!r} names {known}, the turn went to {conversation}"
            )
        agent.convs[conversation].append(turn)

    def _failed(self, agent: AgentModel, key: str | None, outcome: Outcome, text: str) -> None:
        """A turn whose call raised: stored, not stored, or unknown as the error says."""
        stored = outcome.stored
        if stored is False:
            return
        conversation = agent.keys.get(key) if key else None
        if conversation is None and key:
            agent.keys.setdefault(key, None)  # a fresh resolution finds where it went
            agent.pending.setdefault(key, []).append(text)
        elif conversation is None:
            agent.floating.append(text)
        else:
            agent.convs[conversation].append(Expect(text, certain=False))

    def _apply(
        self, agent: AgentModel, key: str | None, route: str, outcome: Outcome, text: str
    ) -> None:
        if outcome.error is None:
            reply = outcome.reply[0] if isinstance(outcome.reply, list) else outcome.reply
            self._landed(agent, key, route, reply, text)
        else:
            self._failed(agent, key, outcome, text)

    # ------------------------------------------------------------------ promises

    @invariant()
    @step
    def promises(self) -> None:
        """Promises 1, 3 and 5 for what the last step touched."""
        if not self.agents:
            return
        touched, self.touched = self.touched, set()
        for name in sorted({session.split("/")[0] for session in touched}):
            self._check_agent(self.agents[name], every=False)
        for session in sorted(touched):
            if session in SESSIONS:
                self._check_history(session)
        STATS.checks += 1
        assert not WATCH.leaks, f"promise 5: the API key shows in a log record: {WATCH.leaks}"

    def _fresh_key(self, agent: AgentModel, key: str) -> str | None:
        """The conversation a fresh process resolves the key to (``None``: not created)."""
        with processes.other_process():
            return self._history(agent, key).conversation_id

    def _check_agent(self, agent: AgentModel, *, every: bool) -> None:
        """Promise 1 over the agent's conversations: each holds exactly its turns."""
        for key, known in list(agent.keys.items()):
            fresh = self._fresh_key(agent, key)
            STATS.checks += 1
            if known is None:
                assert fresh is None or fresh not in agent.convs, (
                    f"promise 1: a fresh process resolves key {key!r} to {fresh}, "
                    "a conversation the key no longer names"
                )
                if fresh is not None:
                    self._map(agent, key, fresh)
            else:
                assert fresh == known, (
                    f"promise 1: key {key!r} names {known} here, a fresh process resolves {fresh}"
                )
        on_server = oracle.agent_conversations(self.letta, agent.id)
        for conversation in on_server:
            if conversation not in agent.convs:
                self._adopt(agent, conversation)
            elif every or conversation in agent.keys.values():
                self._check_conversation(agent, conversation)

    def _map(self, agent: AgentModel, key: str, conversation: str) -> None:
        """The key now names a new conversation: it may hold the key's unplaced turns."""
        agent.keys[key] = conversation
        pending = agent.pending.pop(key, [])
        agent.convs[conversation] = [Expect(text, certain=False) for text in pending]

    def _check_conversation(self, agent: AgentModel, conversation: str) -> None:
        expected = agent.convs[conversation]
        actual = oracle.stored_user_texts(self.letta, conversation)
        STATS.checks += 1
        updated = oracle.reconcile(expected, actual)
        assert updated is not None, (
            f"promise 1: conversation {conversation} of agent {agent.name}: "
            + oracle.describe(expected, actual)
        )
        agent.convs[conversation] = updated

    def _adopt(self, agent: AgentModel, conversation: str) -> None:
        """A conversation the model did not know: it may hold only turns of unknown place."""
        actual = oracle.stored_user_texts(self.letta, conversation)
        STATS.checks += 1
        for text in actual:
            assert text in agent.floating, (
                f"promise 1: conversation {conversation} of agent {agent.name} holds {actual}; "
                f"no turn was meant to go there (unplaced: {agent.floating})"
            )
            agent.floating.remove(text)
        agent.convs[conversation] = [Expect(text) for text in actual]

    def _check_history(self, session: str) -> None:
        """Promise 3: the running process's history equals a fresh process's read."""
        agent, key = self._split(session)
        if key not in agent.keys:
            return
        live = self._try(lambda: _shape(self._live_history(session).messages))
        with processes.other_process():
            fresh = self._try(lambda: _shape(self._history(agent, key).messages))
        STATS.checks += 1
        failed = live.error or fresh.error
        assert failed is None, f"promise 3: reading the history of {key!r} failed: {failed!r}"
        assert live.reply == fresh.reply, (
            f"promise 3: history of {key!r} in this process {live.reply} "
            f"!= a fresh read {fresh.reply}"
        )

    # ------------------------------------------------------------------ turns

    @rule(
        session=st.sampled_from(SESSIONS),
        entry=variants("turn", ENTRIES),
        route=variants("route", ROUTES),
        background=st.booleans(),
        text=_texts(),
        connect=st.sampled_from(CONNECTS),
    )
    @step
    def turn(
        self, session: str, entry: str, route: str, background: bool, text: str, connect: str
    ) -> None:
        """One plain turn: it must succeed, echo the text and be stored once."""
        self._turn(session, entry, route, background, text, connect)

    @rule()
    @step
    def plain_turn(self) -> None:
        """The commonest path: ``invoke`` on ``A/k1`` by ``session_id``.

        Hypothesis sorts rules by their number of arguments and draws the first one for its
        simplest choices; without this rule that was ``restart`` (42% of the steps drawn).
        """
        self._turn("A/k1", "invoke", "session_id", False, f"plain {next(self.counter)}", "api_key")

    def _turn(
        self, session: str, entry: str, route: str, background: bool, text: str, connect: str
    ) -> None:
        self._note(session, f"turn:{entry}:{route}")
        agent, key = self._split(session)
        model = self._model(agent, "background" if background else "plain", connect)
        config = self._cfg(session, route)
        if entry == "generate" and route != "unkeyed":
            model = model.model_copy(update={"session_id": key})  # keyed on the instance
        reply = self._call(lambda: _enter(model, entry, text, config))
        assert reply.text == f"Echo: {text}", f"the reply does not answer this turn: {reply.text!r}"
        self._landed(agent, None if route == "unkeyed" else key, route, reply, text)

    @gate("batch_across_sessions")
    @rule(sessions=st.permutations(["A/k1", "A/k10"]), asynchronous=st.booleans())
    @step
    def batch_across_sessions(self, sessions: list[str], asynchronous: bool) -> None:
        """Two sessions of one agent in one batch call."""
        for session in sessions:
            self._note(session, "batch_across_sessions")
        agent, _ = self._split(sessions[0])
        texts = [f"batch {next(self.counter)}" for _ in sessions]
        configs = [self._cfg(session) for session in sessions]
        model = self._model(agent)
        if asynchronous:
            replies = self._call(lambda: asyncio.run(model.abatch(texts, config=configs)))
        else:
            replies = self._call(lambda: model.batch(texts, config=configs))
        for session, text, reply in zip(sessions, texts, replies, strict=True):
            assert reply.text == f"Echo: {text}"
            self._landed(agent, self._split(session)[1], "session_id", reply, text)

    @rule(
        session=st.sampled_from(SESSIONS),
        history_key=variants("rwmh", ["with_history_key", "without_history_key"]),
        entry=st.sampled_from(["invoke", "stream", "ainvoke", "astream"]),
        text=_texts(),
    )
    @step
    def history_chain(self, session: str, history_key: str, entry: str, text: str) -> None:
        """A turn through ``RunnableWithMessageHistory``."""
        self._note(session, f"rwmh:{history_key}:{entry}")
        agent, key = self._split(session)
        chain = self._chain(agent, history_key == "with_history_key")
        chain_input: Any = {"question": text} if history_key == "with_history_key" else text
        reply = self._call(lambda: _enter(chain, entry, chain_input, self._cfg(session)))
        assert reply.text == f"Echo: {text}", f"the reply does not answer this turn: {reply.text!r}"
        self._landed(agent, key, "session_id", reply, text)

    def _chain(self, agent: AgentModel, history_key: bool, model: Any = None) -> Any:
        model = model or self._model(agent)

        def factory(session_id: str) -> LettaChatMessageHistory:
            return self._history(agent, session_id, "query")

        if not history_key:
            return RunnableWithMessageHistory(model, factory)
        prompt = ChatPromptTemplate.from_messages(
            [MessagesPlaceholder("history"), ("human", "{question}")]
        )
        return RunnableWithMessageHistory(
            prompt | model, factory, input_messages_key="question", history_messages_key="history"
        )

    @rule(
        session=st.sampled_from(SESSIONS),
        via=variants("tool_step", ["invoke", "rwmh"]),
    )
    @step
    def tool_step_turn(self, session: str, via: str) -> None:
        """A ``max_steps=1`` turn that ends on the agent's own tool step (no assistant text)."""
        self._note(session, f"tool_step:{via}")
        agent, key = self._split(session)
        text = f'[tool:conversation_search {{"query": "x"}}] look {next(self.counter)}'
        model = self._model(agent).bind(max_steps=1)
        runnable = self._chain(agent, False, model) if via == "rwmh" else model
        outcome = self._try(lambda: runnable.invoke(text, self._cfg(session)))
        if outcome.error is not None:  # the server's run failed (found here: once it compacted)
            error = outcome.error
            assert isinstance(error, LettaRunError), repr(error)
            assert error.error_type == "error", repr(error)
            STATS.rules["server_run_failed"] += 1
            self._failed(agent, key, outcome, text)
            return
        reply = outcome.reply
        assert reply.response_metadata.get("stop_reason") == "max_steps", reply.response_metadata
        self._landed(agent, key, "session_id", reply, text)

    @gate("client_tool")
    @rule(session=st.sampled_from(SESSIONS), route=st.sampled_from(["session_id", "unkeyed"]))
    @step
    def client_tool_round_trip(self, session: str, route: str) -> None:
        """The agent calls a client tool; its result goes back on the same session."""
        self._note(session, f"client_tool:{route}")
        agent, key = self._split(session)
        text = f"use the tool 'Paris {next(self.counter)}'"
        model = self._model(agent).bind_tools([get_weather])
        config = self._cfg(session, route)
        call = self._call(lambda: model.invoke(text, config))
        assert call.tool_calls, f"the agent did not call the client tool: {call!r}"
        result = ToolMessage(content="sunny", tool_call_id=call.tool_calls[0]["id"])
        follow_up: list[BaseMessage] = [result]
        if route == "unkeyed":  # the conversation is the one of the newest Letta message
            follow_up = [HumanMessage(text), call, result]
        reply = self._call(lambda: model.invoke(follow_up, config))
        assert reply.text.startswith("Tool said:"), reply.text
        assert "sunny" in reply.text, reply.text  # Letta wraps the result in a JSON status
        same = reply.response_metadata.get("conversation_id")
        assert same == call.response_metadata.get("conversation_id"), "the result went elsewhere"
        self._landed(agent, None if route == "unkeyed" else key, route, call, text)

    @gate("structured_output")
    @rule(session=st.sampled_from(SESSIONS))
    @step
    def structured_output(self, session: str) -> None:
        """``with_structured_output`` on a session: a parsed answer, the session free after."""
        self._note(session, "structured_output")
        agent, key = self._split(session)
        word = f"yes{next(self.counter)}"
        text = f"use the tool '{word}'"
        structured = self._model(agent).with_structured_output(Answer)
        outcome = self._try(lambda: structured.invoke(text, self._cfg(session)))
        if outcome.error is None:
            assert outcome.reply == Answer(answer=word), f"structured output: {outcome.reply!r}"
            self._place(agent, key, "session_id", self._key_conversation(agent, key), Expect(text))
        else:
            self._failed(agent, key, outcome, text)

    @gate("long_turn")
    @rule(session=st.sampled_from(["B/k1", "A/k1"]), via=st.sampled_from(["invoke", "rwmh"]))
    @step
    def long_turns(self, session: str, via: str) -> None:
        """Long turns until the server compacts (at most 3; agent B's small window fills)."""
        self._note(session, f"long_turns:{via}")
        agent, key = self._split(session)
        runnable = self._chain(agent, False) if via == "rwmh" else self._model(agent)
        conversation = agent.keys.get(key)
        before = set(oracle.summaries(self.letta, conversation)) if conversation else set()
        for _ in range(3):
            word = f"long {next(self.counter)}"
            text = f"{word} " + "lorem ipsum " * 160
            reply = self._call(lambda text=text: runnable.invoke(text, self._cfg(session)))
            assert reply.text.startswith(f"Echo: {word} lorem ipsum"), reply.text[:80]
            self._landed(agent, key, "session_id", reply, text)
            now = set(oracle.summaries(self.letta, reply.response_metadata["conversation_id"]))
            told = {alert["id"] for alert in reply.response_metadata.get(ALERTS, [])}
            STATS.checks += 1
            assert told == now - before, (
                f"the reply reports the summaries {sorted(told)}; its turn wrote "
                f"{sorted(now - before)}"
            )
            if told:
                STATS.rules["compacted_by_the_server"] += 1
                return
            before = now

    @gate("bad_key")
    @rule(
        session=st.sampled_from(SESSIONS),
        bad=st.sampled_from(["nul", "too_long"]),
        via=st.sampled_from(["invoke", "stream", "history"]),
    )
    @step
    def bad_key(self, session: str, bad: str, via: str) -> None:
        """A key the package must refuse (a NUL, too long): a typed error, nothing sent."""
        self._note(session, f"bad_key:{bad}")
        agent, key = self._split(session)
        wrong = f"{key}\x00x" if bad == "nul" else key + "x" * 512
        config = {"configurable": {"session_id": wrong}}
        before = oracle.agent_conversations(self.letta, agent.id)
        model = self._model(agent)

        def go() -> Any:
            if via == "history":
                return self._history(agent, wrong).messages
            if via == "stream":
                return list(model.stream(f"refused {next(self.counter)}", config))
            return model.invoke(f"refused {next(self.counter)}", config)

        outcome = self._try(go)
        STATS.checks += 1
        assert isinstance(outcome.error, LettaInputError), f"key {wrong!r} was not refused"
        assert oracle.agent_conversations(self.letta, agent.id) == before, "a refused key sent"

    def _key_conversation(self, agent: AgentModel, key: str) -> str:
        """The key's conversation as this process resolves it (for replies without metadata)."""
        return str(self._history(agent, key).conversation_id)

    @gate("graph")
    @rule(
        session=st.sampled_from(GRAPH_SESSIONS + SESSIONS[:1]),
        checkpointer=st.booleans(),
        text=_texts(),
    )
    @step
    def graph_turn(self, session: str, checkpointer: bool, text: str) -> None:
        """A LangGraph turn keyed by ``thread_id``, with or without a checkpointer.

        A checkpointed thread whose conversation went on without it (plain turns on the
        same key) continues in a branch (issue 16's time-travel rule): on 0.16.8 a new
        conversation seeded with the thread's earlier turns, then this one; the key keeps naming the
        conversation it named. A thread whose key was cleared, deleted or lost starts
        over (a new checkpointer), as an app would start a new thread.
        """
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import START, MessagesState, StateGraph

        checkpointer = checkpointer or session in GRAPH_SESSIONS  # g1 always checkpoints
        self._note(session, f"graph:{'checkpointer' if checkpointer else 'plain'}")
        agent, key = self._split(session)
        model = self._model(agent)

        def respond(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"], config)]}

        thread = self.threads.get(key) if checkpointer else None
        if thread is not None and agent.keys.get(key) != thread.root:
            thread = None  # the key names another conversation now: a new thread
            self.checkpointers.pop(key, None)
            self.threads.pop(key, None)
        builder = StateGraph(MessagesState)
        builder.add_node("respond", respond)
        builder.add_edge(START, "respond")
        saver = self.checkpointers.setdefault(key, InMemorySaver()) if checkpointer else None
        graph = builder.compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": key}}
        before = graph.get_state(config).values.get("messages", []) if saver else []
        earlier = [m.text for m in before if isinstance(m, HumanMessage)]
        state = self._call(lambda: graph.invoke({"messages": [HumanMessage(text)]}, config))
        reply = state["messages"][-1]
        assert reply.text == f"Echo: {text}", reply.text
        conversation = reply.response_metadata["conversation_id"]
        if thread is None:
            self._landed(agent, key, "session_id", reply, text)
        else:
            self._place_graph_turn(agent, thread, conversation, earlier, text)
        if checkpointer:
            root = agent.keys.get(key)
            assert root, "a checkpointed turn left its key unmapped"
            self.threads[key] = Thread(root, conversation, len(agent.convs[conversation]))

    def _place_graph_turn(
        self, agent: AgentModel, thread: Thread, conversation: str, earlier: list[str], text: str
    ) -> None:
        """Promise 1 for a checkpointed turn: its thread's conversation, or a new branch."""
        went_on = agent.convs.get(thread.conversation, [])[thread.length :]
        if conversation == thread.conversation:
            assert not any(turn.certain for turn in went_on), (
                f"promise 1: the thread's turn went to {conversation}, which went on without "
                f"the thread ({[turn.text for turn in went_on]}); it should branch"
            )
            agent.convs[conversation].append(Expect(text))
            return
        assert went_on, (
            f"promise 1: the thread's turn went to {conversation}, not to its conversation "
            f"{thread.conversation}, which had not gone on without it"
        )
        assert conversation not in agent.convs, f"promise 1: a branch reused {conversation}"
        STATS.rules["graph:branched"] += 1
        # 0.16.8 forks whole conversations only, so the branch is seeded with the thread's
        # earlier turns (the graph's state), each stored once, then this turn.
        agent.convs[conversation] = [Expect(t) for t in [*earlier, text]]

    # ------------------------------------------------------------------ memory

    @gate("memory_probe")
    @rule(session=st.sampled_from(SESSIONS))
    @step
    def memory_probe(self, session: str) -> None:
        """Promise 4: the turn's prompt holds the agent's current ``human`` block."""
        self._note(session, "memory_probe")
        agent, key = self._split(session)
        text = f"[memory:human] probe {next(self.counter)}"
        value = self.letta.agents.blocks.retrieve("human", agent_id=agent.id).value
        reply = self._call(lambda: self._model(agent).invoke(text, self._cfg(session)))
        self._landed(agent, key, "session_id", reply, text)
        if MEMORY_PROMISE == "exact" or not agent.api_edited:
            STATS.checks += 1
            assert reply.text == f"Memory human={value}", (
                f"promise 4 ({MEMORY_PROMISE}): the prompt shows {reply.text!r}, "
                f"the block holds {value!r}"
            )

    @rule(agent=variants("block_edit", ["A", "B"]))
    @step
    def block_edit_api(self, agent: str) -> None:
        """Another program edits the agent's ``human`` block through the API."""
        model = self.agents[agent]
        self._note(f"{agent}/k1", "block_edit_api")
        value = f"Name: Ada v{next(self.counter)}"
        self.letta.agents.blocks.update("human", agent_id=model.id, value=value)
        model.api_edited = True

    @gate("memory_tool_edit")
    @rule(session=st.sampled_from(SESSIONS))
    @step
    def memory_tool_edit(self, session: str) -> None:
        """The agent edits its own ``human`` block with its memory tool in one session."""
        self._note(session, "memory_tool_edit")
        agent, key = self._split(session)
        note = f"likes tea {next(self.counter)}"
        text = f'[tool:memory_insert {{"label": "human", "new_string": "{note}"}}] remember'
        reply = self._call(lambda: self._model(agent).invoke(text, self._cfg(session)))
        self._landed(agent, key, "session_id", reply, text)
        value = self.letta.agents.blocks.retrieve("human", agent_id=agent.id).value
        assert note in value, f"the memory tool did not edit the block: {value!r}"

    # ------------------------------------------------------------------ faults

    @rule(
        session=st.sampled_from(SESSIONS),
        wrapper=variants("slow_turn", ["with_retry", "with_fallbacks", "manual_retry"]),
    )
    @step
    def slow_turn(self, session: str, wrapper: str) -> None:
        """A turn slower than a short ``timeout``, retried as LangChain users do."""
        self._note(session, f"slow_turn:{wrapper}")
        agent, key = self._split(session)
        word = f"slow {next(self.counter)}"
        text = f"[slow:2] {word}"
        short = self._model(agent, "short-timeout")
        config = self._cfg(session)

        def go() -> Any:
            if wrapper == "with_retry":
                retried = short.with_retry(stop_after_attempt=3, wait_exponential_jitter=False)
                return retried.invoke(text, config)
            if wrapper == "with_fallbacks":
                return short.with_fallbacks([self._model(agent)]).invoke(text, config)
            try:
                return short.invoke(text, config)
            except LangChainException:
                return self._model(agent).invoke(text, config)

        outcome = self._try(go)
        if outcome.error is None:
            assert outcome.reply.text == f"Echo: {word}", outcome.reply.text
        self._apply(agent, key, "session_id", outcome, text)

    @rule(
        session=st.sampled_from(SESSIONS), mode=variants("cut_stream", ["foreground", "background"])
    )
    @step
    def cut_stream(self, session: str, mode: str) -> None:
        """The connection drops after the stream's first event; the reply must not be lost."""
        self._note(session, f"cut_stream:{mode}")
        agent, key = self._split(session)
        text = f"cut {next(self.counter)}"
        model = self._model(agent, f"proxy-{mode}")
        reply = self._call(lambda: model.invoke(text, self._cfg(session)))
        assert reply.text == f"Echo: {text}", reply.text
        self._landed(agent, key, "session_id", reply, text)

    @rule(session=st.sampled_from(SESSIONS), how=variants("abandon", ["break", "cancel"]))
    @step
    def abandon_stream(self, session: str, how: str) -> None:
        """The caller stops reading a stream after its first chunk."""
        self._note(session, f"abandon:{how}")
        agent, key = self._split(session)
        text = f"[slow:2] [long:12] gone {next(self.counter)}"
        model = self._model(agent, "tokens")
        config = self._cfg(session)

        def go() -> None:
            if how == "cancel":
                asyncio.run(_cancel_after_first_chunk(model, text, config))
                return
            stream = model.stream(text, config)
            next(iter(stream))  # then dropped: CPython closes the generator

        outcome = self._try(go)
        if outcome.stored is not False:  # whether the run got to store the turn is open
            self._failed(agent, key, Outcome(error=LangChainException("abandoned")), text)

    # ------------------------------------------------------------------ sessions

    @rule(session=st.sampled_from(SESSIONS), where=variants("clear", ["here", "other_process"]))
    @step
    def clear_history(self, session: str, where: str) -> None:
        """``history.clear()``: the key starts on a fresh, empty conversation."""
        self._note(session, f"clear:{where}")
        agent, key = self._split(session)
        if where == "here":
            history = self._live_history(session)
            self._call(history.clear)
            new = history.conversation_id
        else:
            with processes.other_process():
                history = self._history(agent, key)
                self._call(history.clear)
                new = history.conversation_id
        assert new, "clear() left the session without a conversation"
        assert new not in agent.convs, f"clear() kept an old conversation: {new}"
        agent.keys[key] = new
        agent.convs[new] = []

    @rule(session=st.sampled_from(SESSIONS), how=variants("server_side", ["delete", "rename"]))
    @step
    def server_side_change(self, session: str, how: str) -> None:
        """Another program deletes the session's conversation or renames its summary."""
        agent, key = self._split(session)
        conversation = agent.keys.get(key)
        self._note(session, f"server_side:{how}")
        if not conversation:
            return
        if how == "delete":
            self.letta.conversations.delete(conversation)
            del agent.convs[conversation]
        else:
            self.letta.conversations.update(conversation, summary="renamed by hand")
        agent.keys[key] = None

    @gate("compact")
    @rule(session=st.sampled_from(SESSIONS))
    @step
    def compact(self, session: str) -> None:
        """Explicit compaction of a session's conversation through the API."""
        agent, key = self._split(session)
        conversation = agent.keys.get(key)
        self._note(session, "compact")
        if conversation and len(agent.convs[conversation]) >= 2:
            settings = {"mode": "all", "model": MODEL_HANDLE}
            try:
                self.letta.conversations.messages.compact(
                    conversation, compaction_settings=settings
                )
                STATS.rules["compact:done"] += 1
            except letta_client.APIStatusError:  # too little to compact
                STATS.rules["compact:refused"] += 1

    @gate("restart")
    @rule()
    @step
    def restart(self) -> None:
        """The process restarts: every process-wide cache and object is new."""
        self._note("A/k1", "restart")
        processes.restart()
        self.models.clear()
        self.histories.clear()
        self.checkpointers.clear()
        self.threads.clear()
        self.touched.update(SESSIONS)


# --------------------------------------------------------------------------- entry points


def _enter(runnable: Any, entry: str, value: Any, config: dict[str, Any]) -> Any:
    """Run one turn through ``entry``; the reply as one message."""
    if entry == "invoke":
        return runnable.invoke(value, config)
    if entry == "ainvoke":
        return asyncio.run(runnable.ainvoke(value, config))
    if entry == "stream":
        return _merge(list(runnable.stream(value, config)))
    if entry == "astream":
        return asyncio.run(_acollect(runnable.astream(value, config)))
    if entry == "batch":
        return runnable.batch([value], config=config)[0]
    if entry == "abatch":
        return asyncio.run(runnable.abatch([value], config=config))[0]
    if entry == "generate":
        result = runnable.generate([[HumanMessage(value)]])
        return result.generations[0][0].message
    raise ValueError(entry)


def _merge(chunks: list[Any]) -> Any:
    assert chunks, "the stream yielded nothing"
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


async def _acollect(stream: Any) -> Any:
    return _merge([chunk async for chunk in stream])


async def _cancel_after_first_chunk(model: ChatLetta, text: str, config: Any) -> None:
    first = asyncio.Event()

    async def read() -> None:
        async for _ in model.astream(text, config):
            first.set()

    task = asyncio.create_task(read())
    waiter = asyncio.create_task(first.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _shape(messages: list[BaseMessage]) -> list[tuple[str, str | None, str]]:
    """What a history must agree on: each message's type, id and text."""
    return [(type(message).__name__, message.id, message.text) for message in messages]
