"""Process-wide state of ``langchain_letta``, so one test process can act as several.

The package mirrors server state in a few process-wide caches (session map, read threads,
memory checks, otid seeds, locks). A *restart* empties them for good, as a new process
would start; :func:`other_process` empties them for the length of a ``with`` block and
then puts the first process's state back, so the block runs as a second process (a
replica) against the same server.

The caches all live in ``langchain_letta.state`` (``STORES``, and ``reset()`` for a
restart); :func:`describe` names them in the test output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from langchain_letta import state


def _found() -> list[tuple[str, Any]]:
    """Every process-wide store of the package, by name (all live in its state module)."""
    return [(f"langchain_letta.state.{name}", store) for name, store in state.STORES.items()]


def _mappings(cache: Any) -> list[MutableMapping[Any, Any]]:
    """The mappings that hold ``cache``'s state: itself, or its attributes."""
    if isinstance(cache, MutableMapping):
        return [cache]
    attributes = vars(cache) if hasattr(cache, "__dict__") else {}
    return [value for value in attributes.values() if isinstance(value, MutableMapping)]


def describe() -> str:
    """Which stores this module found in the installed package."""
    return f"caches={[name for name, _ in _found()]} resets=['langchain_letta.state.reset']"


def restart() -> None:
    """Forget everything this process mirrored, as a fresh process would start."""
    state.reset()


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
