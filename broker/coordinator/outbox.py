"""The coordinator's outputs while it handles one input: replies, writes, timers.

``Outbox`` collects the effects of one call and remembers, per write token,
what to do once the shell reports the write done. ``Timers`` is a deadline
heap keyed by what is due (a member's session, a group's join phase...), so
each key has at most one live entry however often its deadline moves.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from broker.coordinator.records import AppendRecords, GroupRecord, encode
from broker.effects import Effect, Persist, Reply
from protocol.errors import ErrorCode

WriteDone = Callable[[ErrorCode, int], None]
"""Called with the write's error (NONE when durable) and now_ms."""


class Outbox:
    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.effects: list[Effect] = []
        self._writes: dict[int, WriteDone] = {}
        self._next_token = 0

    def reply(self, request_id: int, body: dict[str, Any]) -> None:
        self.effects.append(Reply(request_id, body))

    def persist(self, records: Sequence[GroupRecord], now_ms: int, on_done: WriteDone) -> None:
        """Ask the shell to append ``records`` as one batch; ``on_done`` runs when it reports."""
        assert records, "an append holds at least one record"
        token = self._next_token
        self._next_token += 1
        self._writes[token] = on_done
        batch = tuple(encode(record) for record in records)
        self.effects.append(Persist(AppendRecords(self.partition, batch, now_ms, token)))

    def complete(self, token: int, error: ErrorCode, now_ms: int) -> None:
        on_done = self._writes.pop(token, None)
        if on_done is not None:  # a write the coordinator already gave up on (unload)
            on_done(error, now_ms)

    def fail_all(self, error: ErrorCode, now_ms: int) -> None:
        for token in sorted(self._writes):
            self.complete(token, error, now_ms)

    @property
    def writes_in_flight(self) -> int:
        return len(self._writes)

    def take(self) -> list[Effect]:
        effects, self.effects = self.effects, []
        return effects


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable]] = []
        self._due: dict[Hashable, int] = {}
        self._seq = 0

    def schedule(self, key: Hashable, at_ms: int) -> None:
        """Make sure ``key`` fires no later than ``at_ms`` (an earlier entry stands)."""
        current = self._due.get(key)
        if current is not None and current <= at_ms:
            return
        self._due[key] = at_ms
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, key))

    def pop_due(self, now_ms: int) -> list[Hashable]:
        """Keys whose time has come, earliest first; each is forgotten once returned."""
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            at_ms, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == at_ms:
                del self._due[key]
                due.append(key)
        return due

    def next_ms(self) -> int | None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._due)
