"""Virtual time and the event queue every simulated component schedules on.

Events run in (time, insertion order), so a run depends only on its seed:
no wall clock, no set iteration order, no global random state.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class VirtualClock:
    """A clock that only moves when the next event is run."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms
        self._queue: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._sequence = 0
        self.events_run = 0

    def call_at(self, at_ms: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) at virtual time `at_ms` (never in the past)."""
        at_ms = max(at_ms, self.now_ms)
        heapq.heappush(self._queue, (at_ms, self._sequence, fn, args))
        self._sequence += 1

    def call_later(self, delay_ms: int, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self.now_ms + delay_ms, fn, *args)

    def next_at(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def run_until(self, end_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Run every event due up to `end_ms` (or until `stop()` is true), then
        leave the clock at `end_ms`."""
        while self._queue and self._queue[0][0] <= end_ms:
            at_ms, _, fn, args = heapq.heappop(self._queue)
            assert at_ms >= self.now_ms
            self.now_ms = at_ms
            self.events_run += 1
            fn(*args)
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, end_ms)
