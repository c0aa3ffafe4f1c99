"""The fault model as named probabilities (tigerbeetle's VOPR options, in spirit).

Message faults are decided per message; the others are rolled every
`fault_check_interval_ms` of virtual time, per node where that makes sense.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultOptions:
    message_loss_probability: float = 0.0
    message_duplicate_probability: float = 0.0
    message_delay_ms: tuple[int, int] = (1, 10)
    # a reordered message gets up to this much extra delay, overtaking later ones
    message_reorder_probability: float = 0.0
    message_reorder_delay_ms: int = 300
    partition_start_probability: float = 0.0
    partition_heal_probability: float = 0.0
    partition_one_way_probability: float = 0.0  # of a started partition: cut one direction
    process_crash_probability: float = 0.0  # keeps everything the OS got
    machine_crash_probability: float = 0.0  # loses unsynced writes
    persist_crash_probability: float = 0.0  # machine crash while one Persist is written
    torn_write_probability: float = 0.5  # on a machine crash, the last lost write is torn
    restart_delay_ms: tuple[int, int] = (50, 2000)
    fsync_each_persist: bool = True
    os_flush_probability: float = 0.0  # without fsync: the OS writes back dirty data
    fault_check_interval_ms: int = 100

    def healed(self) -> FaultOptions:
        """The same network latency with every fault turned off."""
        return FaultOptions(
            message_delay_ms=self.message_delay_ms,
            fsync_each_persist=self.fsync_each_persist,
            fault_check_interval_ms=self.fault_check_interval_ms,
        )

    @classmethod
    def random(cls, rng: random.Random) -> FaultOptions:
        """A fault mix drawn from `rng`: some seeds lossy, some crashy, some split."""

        def maybe(high: float) -> float:
            return 0.0 if rng.random() < 0.25 else rng.uniform(0.0, high)

        return cls(
            message_loss_probability=maybe(0.2),
            message_duplicate_probability=maybe(0.05),
            message_delay_ms=(1, rng.choice((5, 20, 60))),
            message_reorder_probability=maybe(0.1),
            partition_start_probability=maybe(0.03),
            partition_heal_probability=rng.uniform(0.02, 0.2),
            partition_one_way_probability=rng.uniform(0.0, 0.5),
            process_crash_probability=maybe(0.01),
            machine_crash_probability=maybe(0.01),
            persist_crash_probability=maybe(0.01),
            restart_delay_ms=(50, rng.choice((500, 2000, 5000))),
        )


NO_FAULTS = FaultOptions()
