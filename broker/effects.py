"""The closed set of outputs every sans-IO core returns.

A core (Raft, replication, controller, group coordinator) never does I/O: it
takes a message or a tick with `now_ms` and returns effects. The driver in
broker/server executes them, always making every Persist durable before it
performs any Send from the same batch, so a peer never hears of state that a
crash could take back. The simulator in tests/sim executes the same effects
against a simulated disk and network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver `message` to node `to` (best effort: it may be lost or reordered)."""

    to: int
    message: Any


@dataclass(frozen=True, slots=True)
class Persist:
    """Make `operation` durable (append entries, truncate, save term and vote...)."""

    operation: Any


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the local request identified by `request_id` (a client waiting on us)."""

    request_id: int
    response: Any


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Call the core's tick() no later than `at_ms` (the core has work due then)."""

    at_ms: int


Effect = Send | Persist | Reply | SetTimer
