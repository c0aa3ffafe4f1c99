"""Sans-IO Raft for the controller quorum's metadata log (pre-vote, check-quorum, learners).

The leader of this Raft group is the active controller; brokers that do not
vote follow the log as learners (KRaft's observers). `RaftNode` takes
messages and ticks with `now_ms` and returns effects (broker/effects.py); the
driver persists before it sends. tests/sim drives whole clusters of it under a
seeded fault model.
"""

from broker.raft.core import NotLeader, ProposalDropped, RaftNode, RaftStatus, Role
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
from broker.raft.storage import AppendOps, HardState, MemoryStorage, RaftLog, SaveSnapshot

__all__ = [
    "AppendEntries",
    "AppendOps",
    "AppendResponse",
    "Entry",
    "HardState",
    "InstallSnapshot",
    "MemoryStorage",
    "NotLeader",
    "ProposalDropped",
    "RaftLog",
    "RaftNode",
    "RaftStatus",
    "Role",
    "SaveSnapshot",
    "Snapshot",
    "SnapshotResponse",
    "VoteRequest",
    "VoteResponse",
]
