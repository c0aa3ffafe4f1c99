"""`trilog produce` and `trilog consume` as processes against a broker process."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import trio

from producer import partition_for_key
from producer.client import connect
from protocol.api import ApiKey
from tests.clients_lib.conftest import free_port

CLI = [sys.executable, "-m", "broker.cli"]
STARTUP_DEADLINE_S = 20
COMMAND_TIMEOUT_S = 30


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # poll: waiting on a condition, bounded by a deadline
    raise RuntimeError(f"broker not listening on {port} after {STARTUP_DEADLINE_S} s")


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory):
    """A broker process on a free port (auto-create on, 1 partition by default)."""
    tmp = tmp_path_factory.mktemp("cli-broker")
    port = free_port()
    config = tmp / "broker.toml"
    config.write_text(
        f'[broker]\nnode_id = 1\ndata_dir = "{tmp / "data"}"\n'
        f'[network]\nlisteners = "PLAINTEXT://127.0.0.1:{port}"\n'
    )
    process = subprocess.Popen(
        [*CLI, "broker", "start", "--config", str(config), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def trilog(*args, stdin=b"", env=None):
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def test_lines_in_same_lines_out(bootstrap):
    lines = [b"line %d" % i for i in range(200)] + [b"", "caf\u00e9".encode()]
    done = trilog(
        "produce",
        "pipe",
        "--bootstrap",
        bootstrap,
        "--compression",
        "zstd",
        stdin=b"\n".join(lines) + b"\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"produced 202 records to pipe (partitions 0)\n"
    out = trilog(
        "consume", "pipe", "--bootstrap", bootstrap, "--from-beginning", "--max-messages", "202"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(b"\n")[:-1] == lines
    assert out.stderr == b"consumed 202 records\n"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    async def create():
        host, port = bootstrap.split(":")
        async with connect(host, int(port)) as conn:
            body = {
                "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1}],
                "timeout_ms": 5000,
            }
            response = await conn.request(ApiKey.CREATE_TOPICS, body)
            assert response.topics[0].error_code == 0

    trio.run(create)


def test_keys_land_on_murmur2_partitions_and_offsets_print(bootstrap):
    create_topic(bootstrap, "keyed", 3)
    stdin = b"".join(b"k%d:v%d\n" % (i, i) for i in range(30))
    done = trilog(
        "produce",
        "keyed",
        "--key-separator",
        ":",
        "--acks",
        "1",
        env={"TRILOG_BOOTSTRAP": bootstrap},
        stdin=stdin,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"produced 30 records to keyed (partitions 0,1,2)\n"
    for partition in range(3):
        out = trilog(
            "consume",
            "keyed",
            "--bootstrap",
            bootstrap,
            "--partition",
            str(partition),
            "--offset",
            "1",
            "--timeout-ms",
            "500",
            "--print-key",
            "--print-offset",
        )
        assert out.returncode == 0, out.stderr
        keys = [i for i in range(30) if partition_for_key(b"k%d" % i, 3) == partition]
        expected = [b"%d:%d\tk%d\tv%d" % (partition, n + 1, i, i) for n, i in enumerate(keys[1:])]
        assert out.stdout.split(b"\n")[:-1] == expected


def test_ctrl_c_ends_consume_cleanly(bootstrap):
    assert trilog("produce", "sigint", "--bootstrap", bootstrap, stdin=b"one\n").returncode == 0
    process = subprocess.Popen(
        [*CLI, "consume", "sigint", "--bootstrap", bootstrap, "--from-beginning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout.readline() == b"one\n"  # it is up and polling
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=COMMAND_TIMEOUT_S)
        assert (process.returncode, err) == (0, b"consumed 1 records\n")
    finally:
        process.kill()
        process.wait(timeout=10)


def test_errors_are_one_line(bootstrap):
    cases = [
        (["produce", "t", "--bootstrap", "nonsense"], 2, "is not HOST:PORT"),
        (["consume", "t", "--bootstrap", f"127.0.0.1:{free_port()}"], 1, "no broker reachable"),
        (["consume", "missing", "--bootstrap", bootstrap], 1, "UNKNOWN_TOPIC_OR_PARTITION"),
        (["produce", "pipe", "--bootstrap", bootstrap, "--partition", "9"], 1, "no partition 9"),
        (["consume", "pipe", "--offset", "3"], 2, "--offset needs --partition"),
        (["produce", "t", "--acks", "2"], 2, "--acks"),
    ]
    for args, code, message in cases:
        done = trilog(*args, stdin=b"x\n")
        lines = done.stderr.decode().splitlines()
        assert done.returncode == code, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("trilog: error: "), (args, lines)
        assert message in lines[0], (args, lines)
