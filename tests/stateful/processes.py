"""Process-wide state of ``langchain_letta``, so one test process can act as several.

The package mirrors server state in a few process-wide caches (session map, read threads,
memory checks, otid seeds, locks). A *restart* empties them for good, as a new process
would start; :func:`other_process` empties them for the length of a ``with`` block and
then puts the first process's state back, so the block runs as a second process (a
replica) against the same server.

The caches are named here (module, attribute). A package-level reset function, when the
package grows one, is called as well. :func:`describe` tells which were found, so a
rename that leaves a cache unreset shows in the test output instead of hiding.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

# (module, attribute) of every process-wide cache known to mirror server state.
# Names that are gone from the package are skipped (and reported by describe()).
CACHES: tuple[tuple[str, str], ...] = (
    ("langchain_letta.sessions", "_CACHE"),
    ("langchain_letta.sessions", "_KEY_LOCKS"),
    ("langchain_letta.memory", "LEDGER"),
    ("langchain_letta.chat_history", "_THREADS"),
    ("langchain_letta.locks", "LOCKS"),
    ("langchain_letta.turns", "DOUBTFUL_TURNS"),
    ("langchain_letta.structured", "UNANSWERED"),
    ("langchain_letta.approvals", "PENDING"),
    ("langchain_letta.forks", "_TIPS"),
    ("langchain_letta.forks", "_ROOTS"),
    ("langchain_letta.forks", "_PLANNED"),
    ("langchain_letta.forks", "_SENT"),
    ("langchain_letta.chat_models", "_LAST_SEEN"),  # before issue 12's fix
    ("langchain_letta.conversation", "_LOCKS"),  # before issue 12's fix
)
# Reset functions the package may offer (module, attribute); called on a restart.
RESETS: tuple[tuple[str, str], ...] = (
    ("langchain_letta._state", "reset"),
    ("langchain_letta.state", "reset"),
    ("langchain_letta.testing", "reset_process_state"),
)


def _found() -> list[tuple[str, Any]]:
    found = []
    for module_name, attribute in CACHES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, attribute):
            found.append((f"{module_name}.{attribute}", getattr(module, attribute)))
    return found


def _mappings(cache: Any) -> list[MutableMapping[Any, Any]]:
    """The mappings that hold ``cache``'s state: itself, or its attributes."""
    if isinstance(cache, MutableMapping):
        return [cache]
    attributes = vars(cache) if hasattr(cache, "__dict__") else {}
    return [value for value in attributes.values() if isinstance(value, MutableMapping)]


def describe() -> str:
    """Which caches and resets this module found in the installed package."""
    caches = [name for name, _ in _found()]
    resets = [f"{m}.{a}" for m, a in RESETS if _reset_function(m, a) is not None]
    missing = [f"{m}.{a}" for m, a in CACHES if f"{m}.{a}" not in caches]
    return f"caches={caches} resets={resets} missing={missing}"


def _reset_function(module_name: str, attribute: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    function = getattr(module, attribute, None)
    return function if callable(function) else None


def restart() -> None:
    """Forget everything this process mirrored, as a fresh process would start."""
    for module_name, attribute in RESETS:
        function = _reset_function(module_name, attribute)
        if function is not None:
            function()
    for _, cache in _found():
        for mapping in _mappings(cache):
            mapping.clear()


@contextlib.contextmanager
def other_process() -> Iterator[None]:
    """Run the block as a second process: empty caches, the first one's put back after."""
    saved = [(mapping, dict(mapping)) for _, cache in _found() for mapping in _mappings(cache)]
    for mapping, _ in saved:
        mapping.clear()
    try:
        yield
    finally:
        for mapping, contents in saved:
            mapping.clear()
            mapping.update(contents)
