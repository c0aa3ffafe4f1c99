"""Raft log records and the messages voters exchange, as frozen dataclasses.

Every message carries the sender's term: a receiver with a lower term adopts
it (stepping down), one with a higher term answers so the sender learns it.
Pre-vote requests are the exception: they carry the term the candidate *would*
use and change nobody's term (Raft thesis section 9.6).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """One log record. `data == b""` is the no-op each new leader appends so
    that entries from earlier terms can commit under its own term."""

    index: int
    term: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine's image at `index` (whose entry had `term`); replaces
    the log prefix up to and including `index`."""

    index: int
    term: int
    data: bytes


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """Ask for a vote in `term` (or, with `pre_vote`, whether one would be granted)."""

    term: int
    candidate_id: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class VoteResponse:
    """A granted pre-vote echoes the requested term; a rejection carries ours."""

    term: int
    voter_id: int
    granted: bool
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Replicate `entries` after (prev_log_index, prev_log_term); empty = heartbeat."""

    term: int
    leader_id: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True, slots=True)
class AppendResponse:
    """On success `match_index` is the last index known to equal the leader's log.

    On a reject `match_index` is the prev_log_index that did not match (so the
    leader can tell a stale reject from a fresh one) and `hint_index` is the
    highest index that might still match, for backtracking a whole term at once.
    """

    term: int
    follower_id: int
    success: bool
    match_index: int
    hint_index: int


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Sent instead of AppendEntries when the entries a follower needs were compacted."""

    term: int
    leader_id: int
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class SnapshotResponse:
    """`match_index` is the follower's commit index after handling the snapshot."""

    term: int
    follower_id: int
    match_index: int


Message = (
    VoteRequest | VoteResponse | AppendEntries | AppendResponse | InstallSnapshot | SnapshotResponse
)
