"""The trio driver of this node's Raft core (the controller quorum's log).

It feeds the RaftNode messages from peers and ticks at the time the node asks
for, executes every effect the node returns (Persist through the durable
storage first, then Send over the peer links), and hands committed entries and
restored snapshots to the state machine (the metadata image) in order. All
calls into the node, and the execution of their effects, happen under one
lock: the node's contract is that a call's effects are executed before the
next call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import trio

from broker.effects import Persist, Send, SetTimer
from broker.raft.core import NotLeader, ProposalDropped, RaftNode
from broker.raft.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    InstallSnapshot,
    Snapshot,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from broker.server import peer_codec
from broker.server.clock import now_ms
from broker.server.peer import PeerLink

log = logging.getLogger(__name__)

INBOX_MAX = 4096

peer_codec.register(
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    InstallSnapshot,
    SnapshotResponse,
    Entry,
    Snapshot,
)


class StateMachine(Protocol):
    def load_snapshot(self, data: bytes, index: int) -> None: ...

    def apply(self, entry: Entry) -> None: ...

    def snapshot(self) -> bytes: ...


class ProposalLost(Exception):
    """The entry was not committed (leadership changed); the caller may retry."""


class QuorumDriver:
    def __init__(
        self,
        raft: RaftNode,
        storage: Any,
        links: dict[int, PeerLink],
        state_machine: StateMachine,
        on_role_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.raft = raft
        self.storage = storage
        self.links = links
        self.state_machine = state_machine
        self.on_role_change = on_role_change
        self._inbox_send, self._inbox = trio.open_memory_channel[tuple[int, Any]](INBOX_MAX)
        self._lock = trio.Lock()
        self._deadline_ms = 0
        self._waiters: dict[int, tuple[bytes, trio.Event, list]] = {}
        self.applied = trio.Event()  # replaced after each batch applied
        self.dropped = 0
        self._role = (raft.role, raft.leader_id)

    @property
    def leader_id(self) -> int | None:
        return self.raft.leader_id

    @property
    def is_leader(self) -> bool:
        return self.raft.status().role == "leader"

    @property
    def applied_index(self) -> int:
        return self.raft.applied_index

    def deliver(self, from_id: int, message: Any) -> None:
        """A Raft message from a peer (called by the peer server)."""
        try:
            self._inbox_send.send_nowait((from_id, message))
        except trio.WouldBlock:
            self.dropped += 1  # Raft tolerates loss; memory stays bounded

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for link in self.links.values():
                nursery.start_soon(link.run)
            async with self._lock:
                await self._execute(self.raft.tick(now_ms()))
            task_status.started()
            while True:
                message = None
                with trio.move_on_after(max(0.0, (self._deadline_ms - now_ms()) / 1000)):
                    _, message = await self._inbox.receive()
                async with self._lock:
                    now = now_ms()
                    if message is not None:
                        effects = self.raft.step(message, now)
                    else:
                        effects = self.raft.tick(now)
                    await self._execute(effects)

    async def propose(self, data: bytes) -> int:
        """Append data through Raft; return its index once committed and applied here.

        Raises NotLeader (with the leader hint), ProposalDropped when the log is
        backed up, or ProposalLost if a new leader replaced the entry.
        """
        done = trio.Event()
        outcome: list = []
        async with self._lock:
            index, effects = self.raft.propose(data, now_ms())
            self._waiters[index] = (data, done, outcome)
            await self._execute(effects)
        try:
            await done.wait()
        finally:
            self._waiters.pop(index, None)
        if not outcome[0]:
            raise ProposalLost(f"entry {index} was replaced by a new leader")
        return index

    async def campaign(self) -> None:
        """Start an election now (a lone voter elects itself at once)."""
        async with self._lock:
            await self._execute(self.raft.campaign(now_ms()))

    async def wait_applied(self, index: int) -> None:
        while self.raft.applied_index < index:
            await self.applied.wait()

    async def _execute(self, effects: list) -> None:
        """Persist, then send, then apply what committed (the node's contract)."""
        for effect in effects:
            if isinstance(effect, Persist):
                self.storage.apply(effect.operation)
        for effect in effects:
            if isinstance(effect, Send):
                link = self.links.get(effect.to)
                if link is not None:
                    link.send(effect.message)
            elif isinstance(effect, SetTimer):
                self._deadline_ms = effect.at_ms
        snapshot = self.raft.restore()
        if snapshot is not None:
            self.state_machine.load_snapshot(snapshot.data, snapshot.index)
            self._fail_waiters_below(snapshot.index)
        committed = self.raft.committed()
        for entry in committed:
            self.state_machine.apply(entry)
            waiter = self._waiters.get(entry.index)
            if waiter is not None:
                waiter[2].append(entry.data == waiter[0])
                waiter[1].set()
        if committed or snapshot is not None:
            self.applied.set()
            self.applied = trio.Event()
        if self.raft.wants_snapshot():
            for effect in self.raft.compact(self.raft.applied_index, self.state_machine.snapshot()):
                self.storage.apply(effect.operation)
        role = (self.raft.role, self.raft.leader_id)
        if role != self._role:
            self._role = role
            self.on_role_change()

    def _fail_waiters_below(self, index: int) -> None:
        for waiter_index, (_, done, outcome) in list(self._waiters.items()):
            if waiter_index <= index and not done.is_set():
                outcome.append(False)
                done.set()


__all__ = ["NotLeader", "ProposalDropped", "ProposalLost", "QuorumDriver", "StateMachine"]
