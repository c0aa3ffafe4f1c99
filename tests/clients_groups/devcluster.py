"""`trilog dev --brokers 3` as a subprocess, for tests that SIGKILL brokers.

Every process is stopped by its PID (the dev supervisor's and each broker's
broker.pid), never by name. Ports come from a base port whose client ports
(base..base+2) and quorum ports (base+99+i) were all free a moment ago.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from producer.client import connect
from protocol.api import ApiKey

CLI = [sys.executable, "-m", "broker.cli"]
START_DEADLINE_S = 60.0
QUORUM_OFFSET = 99


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(brokers: int) -> int:
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        ports = [base + i for i in range(brokers)]
        ports += [base + QUORUM_OFFSET + i for i in range(1, brokers + 1)]
        if base + QUORUM_OFFSET + brokers < 65000 and all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range")


class DevCluster:
    """A `trilog dev` cluster in data_dir; kill() and close() act by PID."""

    def __init__(self, data_dir: Path, brokers: int = 3) -> None:
        self.data_dir = data_dir
        self.brokers = brokers
        self.base_port = free_base_port(brokers)
        self.log = open(data_dir / "dev.log", "wb")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [*CLI, "dev", "--brokers", str(brokers), "--data-dir", str(data_dir / "dev"),
             "--base-port", str(self.base_port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.killed: set[int] = set()

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port(i)}" for i in range(1, self.brokers + 1))

    def port(self, node_id: int) -> int:
        return self.base_port + node_id - 1

    def node_of_port(self, port: int) -> int:
        return port - self.base_port + 1

    def pid(self, node_id: int) -> int | None:
        path = self.data_dir / "dev" / f"broker-{node_id}" / "broker.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self, node_id: int) -> None:
        pid = self.pid(node_id)
        assert pid is not None, f"broker {node_id} has no pid file"
        os.kill(pid, signal.SIGKILL)
        self.killed.add(node_id)

    def close(self) -> None:
        for node_id in range(1, self.brokers + 1):
            pid = self.pid(node_id)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()

    async def wait_ready(self) -> None:
        """Until every broker is listening and Metadata lists all of them."""
        with trio.fail_after(START_DEADLINE_S):
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"trilog dev exited: {(self.data_dir / 'dev.log').read_text()}")
                if await self._all_registered():
                    return
                await trio.sleep(0.2)  # poll: waiting on a condition, bounded by a deadline

    async def _all_registered(self) -> bool:
        for node_id in range(1, self.brokers + 1):
            try:
                async with connect("127.0.0.1", self.port(node_id), timeout_s=2) as conn:
                    response = await conn.request(ApiKey.METADATA, {"topics": []})
            except Exception:  # noqa: BLE001 (not up yet: any failure means wait)
                return False
            if len(response.brokers) < self.brokers:
                return False
        return True
