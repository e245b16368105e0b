"""A thread-safe mapping that forgets its least recently used entries beyond a budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar, overload

__all__ = ["LRU"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


_MISSING: Any = object()


def _one(_: object) -> int:
    return 1


class LRU(MutableMapping[K, V], Generic[K, V]):
    """A mapping bounded by the total weight of its values (by default, their count).

    Reading or writing an entry makes it the most recently used; once the weights add up
    to more than `budget`, the least recently used entries are dropped (the newest one is
    always kept). Every operation is atomic; hold `lock` for a compound one.

    Args:
        budget: the most weight the mapping holds.
        weigh: the weight of a value (default: 1 each). A value that grows in place is
            weighed again by `reweigh`.
        on_evict: called with each entry dropped for the budget (not with one removed by
            `pop`, `del` or `clear`), under `lock`.

    """

    def __init__(
        self,
        budget: int,
        weigh: Callable[[V], int] = _one,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        self.budget = budget
        self.lock = threading.RLock()
        self._weigh = weigh
        self._on_evict = on_evict
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self._total = 0

    def __repr__(self) -> str:
        return f"LRU(entries={len(self._entries)}, weight={self._total}, budget={self.budget})"

    def __getitem__(self, key: K) -> V:
        with self.lock:
            value = self._entries[key]
            self._entries.move_to_end(key)
            return value

    def __setitem__(self, key: K, value: V) -> None:
        with self.lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            self._set_weight(key, self._weigh(value))

    def __delitem__(self, key: K) -> None:
        with self.lock:
            del self._entries[key]
            self._total -= self._weights.pop(key)

    def __iter__(self) -> Iterator[K]:
        with self.lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: D) -> V | D: ...

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        """Remove `key` and return its value (`default` when absent, if given)."""
        with self.lock:
            if key in self._entries:
                value = self._entries.pop(key)
                self._total -= self._weights.pop(key)
                return value
            if default is _MISSING:
                raise KeyError(key)
            return default

    def obtain(self, key: K, make: Callable[[], V]) -> V:
        """The value of `key`, made by `make()` and stored first when absent."""
        with self.lock:
            if key in self._entries:
                return self[key]
            value = make()
            self[key] = value
            return value

    def reweigh(self, key: K) -> None:
        """Weigh the value of `key` again (it grew or shrank in place)."""
        with self.lock:
            if key in self._entries:
                self._set_weight(key, self._weigh(self._entries[key]))

    def clear(self) -> None:
        """Forget every entry."""
        with self.lock:
            self._entries.clear()
            self._weights.clear()
            self._total = 0

    @property
    def weight(self) -> int:
        """The weight the mapping holds now."""
        return self._total

    def _set_weight(self, key: K, weight: int) -> None:
        self._total += weight - self._weights.get(key, 0)
        self._weights[key] = weight
        while self._total > self.budget and len(self._entries) > 1:
            oldest, value = self._entries.popitem(last=False)
            self._total -= self._weights.pop(oldest)
            if self._on_evict is not None:
                self._on_evict(oldest, value)
