"""Follower-side replication decisions of one partition (KIP-101, KIP-279).

A follower that learns of a new leader epoch first asks the leader where its
own latest epoch ends (OffsetForLeaderEpoch) and truncates any suffix the
leader does not have, before fetching. Pure functions over the numbers
involved; the shell does the asking, truncating and fetching.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class Phase(enum.Enum):
    TRUNCATING = "truncating"  # must ask the leader before fetching
    FETCHING = "fetching"


class EpochView(Protocol):
    """The part of the local log a truncation decision reads."""

    @property
    def log_end_offset(self) -> int: ...

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]: ...


@dataclass(slots=True)
class FollowerState:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    phase: Phase = Phase.TRUNCATING

    def on_leader_hw(self, leader_hw: int, log_end_offset: int) -> None:
        """A follower's HW is the leader's, capped by what it holds itself."""
        self.high_watermark = max(self.high_watermark, min(leader_hw, log_end_offset))


def truncation_offset(
    local: EpochView,
    local_latest_epoch: int,
    leader_epoch: int,
    leader_end_offset: int,
    high_watermark: int,
) -> int:
    """Where to truncate, given the leader's answer for our latest epoch.

    - The leader knows no epoch at all: fall back to our high watermark
      (pre-KIP-101 behaviour: safe, possibly truncating more than needed).
    - Same epoch: keep up to the leader's end of it.
    - An older epoch (we wrote under an epoch the leader never had): keep up to
      where *both* logs end that older epoch.
    Never beyond our own log end.
    """
    end = local.log_end_offset
    if leader_epoch == UNDEFINED_EPOCH or leader_end_offset == UNDEFINED_OFFSET:
        return min(high_watermark, end)
    if leader_epoch == local_latest_epoch:
        return min(leader_end_offset, end)
    _, local_end = local.end_offset_for(leader_epoch, end)
    if local_end == UNDEFINED_OFFSET:
        return min(high_watermark, end)
    return min(leader_end_offset, local_end, end)
