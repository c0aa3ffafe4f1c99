"""Shared helpers of the single-broker benches (produce_single.py, consume_single.py).

A `Broker` runs one trilog broker as a subprocess on a free port with a temporary data
directory and always stops it by its PID. `produce_for` / `produce_count` / `consume_all`
drive it with confluent-kafka. `run_peer` runs one of the shared peer scripts
(shared/bench-peers/) in its own virtualenv and returns its JSON rows; the peer scripts
start and stop their own servers by PID.

Workload definitions are those of shared/PERFORMANCE.md: messages/s and MB/s are
acknowledged (or read) messages divided by the time to the last acknowledgement (or read).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEER_PYTHON = Path("/tmp/peers-venv/bin/python")
NATS_GOBIN = Path("/tmp/peers-gopath/natsbench")
BROKER_START_TIMEOUT_S = 30.0
BROKER_STOP_TIMEOUT_S = 20.0

# Reference figures of shared/PERFORMANCE.md (2026-11-26), shown with --no-peers only.
REFERENCE = {
    "redis_benchmark_w1_msgs_s": 279_486,
    "redis_benchmark_w1_mb_s": 27.9,
    "nats_r1_go_w2_msgs_s": 107_207,
    "nats_r1_go_w2_mb_s": 110.0,
    "redis_xrange_w3_msgs_s": 782_941,
}


def out(*parts: object) -> None:
    """One human-readable line on stdout (benches print; ruff's T20 forbids print())."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def emit_json(figures: dict[str, object]) -> None:
    """The bench's last line: one JSON object of its figures."""
    sys.stdout.write(json.dumps(figures, sort_keys=False) + "\n")
    sys.stdout.flush()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if not ours or not theirs:
        return None
    return round(ours / theirs, 3)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit so every finally block runs."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """One trilog broker subprocess; `stop()` ends exactly its PID (SIGTERM, then SIGKILL)."""

    def __init__(
        self, log_level: str = "WARNING", extra_toml: str = "", src: str | None = None
    ) -> None:
        # `python -m broker.cli` run in `src` imports that checkout's broker (A/B runs)
        self.src = Path(src).resolve() if src else REPO
        self.dir = Path(tempfile.mkdtemp(prefix="trilog-bench-"))
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "broker.log"
        self.config_path = self.dir / "broker.toml"
        self.config_text = (
            "[broker]\n"
            f'data_dir = "{self.dir / "data"}"\n'
            "[network]\n"
            f'listeners = "PLAINTEXT://127.0.0.1:{self.port}"\n' + extra_toml
        )
        self.log_level = log_level

    def _write_config(self) -> None:
        """The config; with a free controller port where this checkout has that key, so a
        bench never collides with another broker on the default 127.0.0.1:9093."""
        with_controller = self.config_text + f'[controller]\nlistener = "127.0.0.1:{free_port()}"\n'
        self.config_path.write_text(with_controller)
        check = [sys.executable, "-m", "broker.cli", "config", "check", str(self.config_path)]
        ok = subprocess.run(check, cwd=self.src, capture_output=True, timeout=60).returncode == 0
        if not ok:
            self.config_path.write_text(self.config_text)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Broker:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            exit_on_sigterm()  # so a SIGTERM still runs stop() and ends the broker
        self._write_config()
        cmd = [sys.executable, "-m", "broker.cli", "broker", "start"]
        cmd += ["--config", str(self.config_path), "--log-level", self.log_level]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.src)
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while not _port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited rc={self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker did not listen on {self.port}: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def check_alive(self) -> None:
        """Raise (with the end of its log) if the broker process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"broker exited rc={rc}: {self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        """SIGTERM the broker's PID, SIGKILL it after a grace period, remove the data dir.

        SIGTERM and SIGINT to this process are held back meanwhile (a second one must not
        interrupt the cleanup) and delivered after it."""
        held = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            proc, self.proc = self.proc, None
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=BROKER_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)

    def __enter__(self) -> Broker:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    futures[name].result(timeout=30)
    # wait until metadata shows every partition with a leader
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5)
        t = md.topics.get(name)
        ready = t is not None and t.error is None and len(t.partitions) == partitions
        if ready and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not ready")


def log_end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    """Sum of the latest offsets of `topic` (ListOffsets, no consumer group involved)."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
    futures = admin.list_offsets(request, request_timeout=10)
    return sum(f.result(timeout=30).offset for f in futures.values())


def producer_config(bootstrap: str) -> dict[str, object]:
    """acks=1, many in flight: large batches, short linger, deep local queue."""
    return {
        "bootstrap.servers": bootstrap,
        "acks": 1,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "message.max.bytes": 1_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "max.in.flight.requests.per.connection": 5,
        "enable.idempotence": False,
        "compression.type": "none",
        "message.timeout.ms": 60_000,  # a dead broker fails the run instead of hanging it
    }


class _Acks:
    __slots__ = ("acked", "errors", "t_last", "first_error")

    def __init__(self) -> None:
        self.acked = 0
        self.errors = 0
        self.t_last = 0.0
        self.first_error: str | None = None

    def callback(self, err: object, _msg: object) -> None:
        if err is None:
            self.acked += 1
            self.t_last = time.perf_counter()
        else:
            self.errors += 1
            if self.first_error is None:
                self.first_error = str(err)


def _produce_loop(
    bootstrap: str,
    topic: str,
    size: int,
    partition: int | None,
    keep_going: Callable[[int], bool],
) -> dict[str, float]:
    from confluent_kafka import Producer

    acks = _Acks()
    conf = producer_config(bootstrap)
    conf["on_delivery"] = acks.callback
    producer = Producer(conf)
    value = b"x" * size
    produce = producer.produce
    poll = producer.poll
    kwargs = {} if partition is None else {"partition": partition}
    sent = 0
    t0 = time.perf_counter()
    while keep_going(sent):
        for _ in range(1000):
            try:
                produce(topic, value, **kwargs)
            except BufferError:
                poll(0.005)
                continue
            sent += 1
        poll(0)
    t_sent = time.perf_counter()
    left = producer.flush(60)
    secs = (acks.t_last or time.perf_counter()) - t0
    if acks.first_error:
        out(f"  !! delivery errors: {acks.errors}, first: {acks.first_error}")
    return {
        "sent": sent,
        "acked": acks.acked,
        "errors": acks.errors,
        "unflushed": left,
        "send_secs": round(t_sent - t0, 3),
        "secs": round(secs, 3),
        "msgs_s": round(acks.acked / secs) if secs > 0 else 0,
        "mb_s": round(acks.acked * size / secs / 1e6, 2) if secs > 0 else 0.0,
    }


def produce_for(
    bootstrap: str, topic: str, size: int, dur: float, partition: int | None = 0
) -> dict[str, float]:
    """Publish `size`-byte values for `dur` seconds; rate = acked ÷ time to the last ack."""
    deadline = time.perf_counter() + dur
    return _produce_loop(
        bootstrap, topic, size, partition, lambda _n: time.perf_counter() < deadline
    )


def produce_count(
    bootstrap: str, topic: str, size: int, count: int, partition: int | None = 0
) -> dict[str, float]:
    """Publish (at least) `count` values of `size` bytes, 1,000 at a time (at most 5 min)."""
    deadline = time.perf_counter() + 300
    return _produce_loop(
        bootstrap, topic, size, partition, lambda n: n < count and time.perf_counter() < deadline
    )


def consume_all(bootstrap: str, topic: str, partition: int, total: int, size: int) -> dict:
    """Read `total` messages of `partition` from the beginning (assign, no group)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "trilog-bench-unused",  # librdkafka wants one; assign() joins no group
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 16_777_216,
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 1_000_000,
            "queued.max.messages.kbytes": 1_048_576,
            "enable.partition.eof": False,
        }
    )
    try:
        got = 0
        errors = 0
        t0 = time.perf_counter()
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = t0 + 120
        while got < total and time.perf_counter() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error() is None:
                    got += 1
                else:
                    errors += 1
        secs = time.perf_counter() - t0
    finally:
        consumer.close()
    return {
        "read": got,
        "errors": errors,
        "secs": round(secs, 3),
        "msgs_s": round(got / secs) if secs > 0 else 0,
        "mb_s": round(got * size / secs / 1e6, 2) if secs > 0 else 0.0,
    }


# ---- peers (shared/bench-peers) -------------------------------------------------------------


def peers_dir(explicit: str | None) -> Path:
    """shared/bench-peers: --peers-dir, $TRILOG_PEERS_DIR, or shared/ beside the repo."""
    for cand in (explicit, os.environ.get("TRILOG_PEERS_DIR")):
        if cand:
            return Path(cand)
    return REPO.parent / "shared" / "bench-peers"


def _have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


def ensure_peer_tools(pdir: Path, need_go: bool) -> None:
    """Install what run_all.sh installs, where it is missing (Debian packages, a venv, Go)."""
    if not (_have("redis-server") and _have("redis-benchmark") and _have("nats-server")):
        out("  installing nats-server, redis-server, redis-tools (apt-get) ...")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nats-server", "redis-server", "redis-tools"],
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
    if not PEER_PYTHON.exists():
        out(f"  creating {PEER_PYTHON.parent.parent} (nats-py redis hiredis) ...")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_PYTHON.parent.parent)], check=True)
        subprocess.run(
            [str(PEER_PYTHON), "-m", "pip", "install", "-q", "nats-py", "redis", "hiredis"],
            check=True,
            timeout=600,
        )
    if need_go and not NATS_GOBIN.exists():
        out("  building the NATS Go bench (build_gobench.sh) ...")
        subprocess.run(["bash", str(pdir / "build_gobench.sh")], check=True, timeout=900)


def run_peer(pdir: Path, args: list[str], timeout: float) -> list[dict]:
    """Run one peer script with the peers' venv python; return its JSON lines.

    The script runs in its own process group; on timeout the whole group is ended by its
    id (the script's own cleanup stops its servers by PID on SIGTERM).
    """
    cmd = [str(PEER_PYTHON), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=pdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(args)} failed rc={proc.returncode}: {tail}")
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                rows.append(json.loads(line))
    return rows


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    out(f"== {title}")
    t0 = time.perf_counter()
    yield
    out(f"   ({time.perf_counter() - t0:.1f} s)")
