"""A real broker process for tests that talk to it with real clients.

`BrokerProcess` writes a config on a free port in the test's tmp_path, runs
`python -m broker.cli broker start` with stderr captured to a file, and
waits, against a deadline, for the port to accept. Stop it with SIGTERM,
kill it with SIGKILL, start it again on the same data directory. The
fixture kills the process by PID when the test ends, however it ends.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.05
BROKER_COMMAND = [sys.executable, "-m", "broker.cli", "broker", "start"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class BrokerProcess:
    """One `trilog broker start` subprocess and the files it owns."""

    host = "127.0.0.1"

    def __init__(
        self, tmp_path: Path, *, log_level: str = "INFO", **sections: dict[str, object]
    ) -> None:
        self.dir = tmp_path
        self.log_level = log_level
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.config_path = tmp_path / "broker.toml"
        self.stderr_path = tmp_path / "broker.stderr"
        self.config_path.write_text(self._config_text(sections))
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr_start = 0  # where the current run's stderr begins

    def _config_text(self, sections: dict[str, dict[str, object]]) -> str:
        merged: dict[str, dict[str, object]] = {
            "broker": {"data_dir": str(self.data_dir)},
            "network": {"listeners": f"PLAINTEXT://{self.host}:{self.port}"},
        }
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        lines = []
        for name, keys in merged.items():
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
        return "\n".join(lines) + "\n"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "broker was never started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the broker and return once its port accepts connections."""
        assert not self.alive(), "broker already running"
        self._stderr_start = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [*BROKER_COMMAND, "--config", self.config_path, "--log-level", self.log_level],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        deadline = time.monotonic() + START_DEADLINE_S
        while not port_accepts(self.host, self.port):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"broker exited with {self.proc.returncode} while starting:\n{self.run_log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"broker not serving after {START_DEADLINE_S}s:\n{self.run_log()}"
                )
            time.sleep(POLL_INTERVAL_S)  # poll: waiting on a condition, bounded by a deadline

    def stop(self) -> int:
        """SIGTERM, wait for the exit, and return the exit code."""
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"broker ignored SIGTERM for {STOP_DEADLINE_S}s:\n{self.run_log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL by PID and reap; a no-op if it already exited."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_DEADLINE_S)

    def restart(self, how: str) -> None:
        """Stop ('sigterm', which must exit 0) or kill ('sigkill'), then start again."""
        if how == "sigterm":
            code = self.stop()
            assert code == 0, f"broker exited {code} on SIGTERM:\n{self.run_log()}"
        elif how == "sigkill":
            self.kill()
        else:
            raise ValueError(f"restart how={how!r}")
        self.start()

    def log(self) -> str:
        """Everything every run of this broker wrote to stderr."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def run_log(self) -> str:
        """What the current (or last) run wrote to stderr."""
        return self.log()[self._stderr_start :]

    def wait_for_log(self, pattern: str, deadline_s: float = START_DEADLINE_S) -> re.Match[str]:
        """The first match of ``pattern`` in this run's stderr, waiting for it to appear."""
        deadline = time.monotonic() + deadline_s
        while (found := re.search(pattern, self.run_log())) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in {deadline_s}s:\n{self.run_log()}")
            time.sleep(POLL_INTERVAL_S)  # poll: waiting on a condition, bounded by a deadline
        return found

    def earlier_runs_log(self) -> str:
        """What the runs before the current one wrote to stderr."""
        return self.log()[: self._stderr_start]

    def segment_path(self, topic: str, partition: int, base_offset: int = 0) -> Path:
        return self.data_dir / f"{topic}-{partition}" / f"{base_offset:020d}.log"

    def assert_no_traceback(self) -> None:
        text = self.log()
        at = text.find("Traceback")
        count = text.count("Traceback")
        excerpt = text[max(at - 300, 0) : at + 3000]
        assert at < 0, f"broker stderr ({self.stderr_path}) holds {count} tracebacks:\n{excerpt}"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    """Make started BrokerProcess objects; every one is killed by PID at teardown."""
    made: list[BrokerProcess] = []

    def make(*, log_level: str = "INFO", **sections: dict[str, object]) -> BrokerProcess:
        broker = BrokerProcess(tmp_path / f"broker{len(made)}", log_level=log_level, **sections)
        made.append(broker)
        broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in made:
            broker.kill()


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    """One started broker with the default config."""
    return broker_factory()
