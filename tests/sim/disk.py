"""A simulated disk: what the OS holds versus what survived fsync.

Generic over the store it wraps (anything with `apply(operation)`), given a
`clone` and a `tear` function. A process crash loses nothing the OS got; a
machine crash keeps what was synced plus a random prefix of the unsynced
writes (the OS may have written some back), the last of which may be torn.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Store(Protocol):
    def apply(self, operation: Any) -> None: ...


S = TypeVar("S", bound=Store)


class SimDisk(Generic[S]):
    def __init__(
        self,
        empty: Callable[[], S],
        clone: Callable[[S], S],
        tear: Callable[[Any, random.Random], Any | None],
    ) -> None:
        self._clone = clone
        self._tear = tear
        self.current: S = empty()  # what a restarted process reads
        self._synced: S = empty()  # what a power loss cannot take
        self._unsynced: list[Any] = []
        self.writes = self.torn_writes = self.lost_writes = 0

    def write(self, operation: Any, *, sync: bool) -> None:
        self.writes += 1
        self.current.apply(operation)
        self._unsynced.append(operation)
        if sync:
            self.sync()

    def sync(self) -> None:
        for operation in self._unsynced:
            self._synced.apply(operation)
        self._unsynced = []

    def machine_crash(self, rng: random.Random, torn_write_probability: float) -> None:
        """Power loss: keep synced data, a prefix of the rest, maybe one torn write."""
        kept = rng.randint(0, len(self._unsynced))
        for operation in self._unsynced[:kept]:
            self._synced.apply(operation)
        lost = self._unsynced[kept:]
        if lost and rng.random() < torn_write_probability:
            torn = self._tear(lost[0], rng)
            if torn is not None:
                self._synced.apply(torn)
                self.torn_writes += 1
        self.lost_writes += len(lost)
        self._unsynced = []
        self.current = self._clone(self._synced)
