"""A simulated network between numbered nodes: loss, duplication, delay,
reordering, and partitions (symmetric groups or one-way cuts).

Generic: messages are opaque; `deliver(src, dst, message)` is called at the
virtual time each copy arrives, if the link is still up then.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tests.sim.clock import VirtualClock
from tests.sim.faults import FaultOptions


class SimNetwork:
    def __init__(
        self,
        clock: VirtualClock,
        rng: random.Random,
        options: FaultOptions,
        deliver: Callable[[int, int, Any], None],
    ) -> None:
        self._clock = clock
        self._rng = rng
        self.options = options
        self._deliver = deliver
        self._group: dict[int, int] = {}  # node -> partition group; absent = group 0
        self._cut: set[tuple[int, int]] = set()  # one-way (src, dst) cuts
        self.sent = self.dropped = self.duplicated = self.delivered = 0

    def connected(self, src: int, dst: int) -> bool:
        same_side = self._group.get(src, 0) == self._group.get(dst, 0)
        return same_side and (src, dst) not in self._cut

    @property
    def whole(self) -> bool:
        return not self._group and not self._cut

    def partition(self, *groups: list[int]) -> None:
        """Split into `groups`; nodes in no group stay with group 0."""
        self._group = {node: number for number, group in enumerate(groups) for node in group}

    def cut(self, src: int, dst: int) -> None:
        """Drop everything src sends to dst (but not the other way)."""
        self._cut.add((src, dst))

    def heal(self) -> None:
        self._group = {}
        self._cut = set()

    def send(self, src: int, dst: int, message: Any) -> None:
        self.sent += 1
        o, rng = self.options, self._rng
        if not self.connected(src, dst) or (
            o.message_loss_probability and rng.random() < o.message_loss_probability
        ):
            self.dropped += 1
            return
        copies = 1
        if o.message_duplicate_probability and rng.random() < o.message_duplicate_probability:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            delay_ms = rng.randint(*o.message_delay_ms)
            if o.message_reorder_probability and rng.random() < o.message_reorder_probability:
                delay_ms += rng.randint(0, o.message_reorder_delay_ms)
            self._clock.call_later(delay_ms, self._arrive, src, dst, message)

    def _arrive(self, src: int, dst: int, message: Any) -> None:
        if not self.connected(src, dst):
            self.dropped += 1
            return
        self.delivered += 1
        self._deliver(src, dst, message)
