"""Running many simulation seeds: what the Raft and cluster simulations share.

A failing seed fails the test with the one command that replays it; the replay
test runs one seed with a DEBUG trace in the captured log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.sim.raft_invariants import InvariantViolation


@dataclass(frozen=True)
class Seeds:
    """Seed counts and replay instructions for one simulation, read from the
    environment variables <prefix>_SEEDS, <prefix>_SOAK_SEEDS and <prefix>_SEED."""

    prefix: str
    test_file: str
    run_seed: Callable[..., Any]
    soak_default: int = 10000
    """Extra seeds under -m soak, sized so CI's soak step stays well inside its bound."""

    @property
    def count(self) -> int:
        return int(os.environ.get(f"{self.prefix}_SEEDS", "1000"))

    @property
    def soak_count(self) -> int:
        return int(os.environ.get(f"{self.prefix}_SOAK_SEEDS", str(self.soak_default)))

    def replay_command(self, seed: int) -> str:
        return f"{self.prefix}_SEED={seed} python -m pytest {self.test_file} -k replay"

    def run(self, seeds: range) -> None:
        for seed in seeds:
            try:
                self.run_seed(seed)
            except Exception as exc:
                pytest.fail(
                    f"seed {seed}: {exc}\nreplay: {self.replay_command(seed)}", pytrace=False
                )

    def replay(self, caplog: pytest.LogCaptureFixture) -> None:
        seed = os.environ.get(f"{self.prefix}_SEED")
        if seed is None:
            pytest.skip(f"set {self.prefix}_SEED to replay a seed")
        caplog.set_level(logging.DEBUG)
        assert self.run_seed(int(seed)).seed == int(seed)

    def violations(self, seeds: range, **variant: bool) -> list[str]:
        """Invariants broken by a deliberately broken variant, seed by seed."""
        found = []
        for seed in seeds:
            try:
                self.run_seed(seed, **variant)
            except InvariantViolation as exc:
                found.append(exc.invariant)
        return found
