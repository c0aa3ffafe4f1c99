"""W1 with the client libraries on a 3-broker dev cluster: ours vs kafka-python vs confluent.

Every producer gets the same settings: acks=all on a topic with replication factor 3
and min.insync.replicas=2 (the dev cluster's defaults), one partition (JetStream's
stream is one ordered log too), linger 5 ms, batches up to 256 KiB, no compression,
no idempotence. Each publishes 100 B values for --dur seconds with many in flight;
messages/s = acknowledged messages / time to the last acknowledgement. Then our
consumer and confluent-kafka's read the topic back from the start. Unless --no-peers,
nats-py publishes to a JetStream R3 stream in the same run (shared/bench-peers).

The cluster is `trilog dev --brokers 3` in a temporary directory on free ports,
stopped by PID. Goals (shared/PERFORMANCE.md): ours >= 1.0x kafka-python and
>= 2.0x nats-py R3. The last line is one JSON object.

Usage: python bench/clients.py [--dur 8] [--runs 1] [--no-peers] [--profile FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import deque
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    emit_json,
    ensure_peer_tools,
    exit_on_sigterm,
    median,
    out,
    peers_dir,
    ratio,
    run_peer,
    section,
)
from consumer import Consumer  # noqa: E402
from producer import Producer  # noqa: E402
from producer.client import connect  # noqa: E402
from protocol.api import ApiKey  # noqa: E402

SIZE = 100
BATCH_BYTES = 256 * 1024
LINGER_MS = 5
PENDING_MAX = 200_000
"""Handles our producer keeps before waiting for the oldest (bounds the bench's memory)."""
START_TIMEOUT_S = 60.0
QUORUM_OFFSET = 99


# -- the cluster ---------------------------------------------------------------------------


class DevCluster:
    """`trilog dev --brokers 3` in a temporary directory; stop() kills by PID."""

    def __init__(self, base_port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="trilog-bench-clients-"))
        self.base_port = base_port
        self.bootstrap = ",".join(f"127.0.0.1:{base_port + i}" for i in range(3))
        self.log = (self.dir / "dev.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "dev", "--brokers", "3",
             "--data-dir", str(self.dir / "dev"), "--base-port", str(base_port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for i in (1, 2, 3):
            pid_file = self.dir / "dev" / f"broker-{i}" / "broker.pid"
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        self.log.close()

    async def ready(self) -> None:
        with trio.fail_after(START_TIMEOUT_S):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"trilog dev exited; see {self.dir / 'dev.log'}")
                with contextlib.suppress(Exception):
                    async with connect("127.0.0.1", self.base_port, timeout_s=2) as conn:
                        response = await conn.request(ApiKey.METADATA, {"topics": []})
                        if len(response.brokers) == 3:
                            return
                await trio.sleep(0.3)

    async def create_topic(self, name: str) -> None:
        async with connect("127.0.0.1", self.base_port) as conn:
            body = {
                "topics": [{"name": name, "num_partitions": 1, "replication_factor": 3}],
                "timeout_ms": 10000,
            }
            response = await conn.request(ApiKey.CREATE_TOPICS, body)
            assert response.topics[0].error_code == 0, response
        await trio.sleep(1.0)  # let every replica open the partition


def free_base_port() -> int:
    import socket

    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        ports = [base + i for i in range(3)] + [base + QUORUM_OFFSET + i for i in (1, 2, 3)]
        if base + QUORUM_OFFSET + 3 < 65000 and all(_port_free(p) for p in ports):
            return base
    raise RuntimeError("no free ports")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- producers -------------------------------------------------------------------------------


def _figures(acked: int, errors: int, secs: float) -> dict[str, float]:
    return {
        "acked": acked,
        "errors": errors,
        "secs": round(secs, 3),
        "msgs_s": round(acked / secs) if secs > 0 else 0,
        "mb_s": round(acked * SIZE / secs / 1e6, 2) if secs > 0 else 0.0,
    }


async def ours_produce(bootstrap: str, topic: str, dur: float) -> dict[str, float]:
    value = b"x" * SIZE
    acked = errors = 0
    pending: deque = deque()
    producer = Producer(
        bootstrap, acks=-1, linger_ms=LINGER_MS, batch_bytes=BATCH_BYTES, enable_idempotence=False
    )
    async with producer:
        enqueue = producer.enqueue
        t0 = time.perf_counter()
        deadline = t0 + dur
        while time.perf_counter() < deadline:
            for _ in range(1000):
                pending.append(await enqueue(topic, value, partition=0))
            await trio.sleep(0)  # let the sender run even if enqueue never had to wait
            while len(pending) > PENDING_MAX or (pending and pending[0].done()):
                acked, errors = await _settle(pending.popleft(), acked, errors)
        await producer.flush()
        while pending:
            acked, errors = await _settle(pending.popleft(), acked, errors)
        secs = time.perf_counter() - t0
    return _figures(acked, errors, secs)


async def _settle(handle, acked: int, errors: int) -> tuple[int, int]:
    try:
        await handle.result()
    except Exception:  # noqa: BLE001 (a failed delivery is counted, not raised)
        return acked, errors + 1
    return acked + 1, errors


def kafka_python_produce(bootstrap: str, topic: str, dur: float) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        kafka = importlib.import_module("kafka")
    producer = kafka.KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        linger_ms=LINGER_MS,
        batch_size=BATCH_BYTES,
        max_request_size=1_048_576,
        enable_idempotence=False,
    )
    value = b"x" * SIZE
    futures: deque = deque()
    acked = errors = 0
    t0 = time.perf_counter()
    deadline = t0 + dur
    while time.perf_counter() < deadline:
        for _ in range(1000):
            futures.append(producer.send(topic, value, partition=0))
        while futures and futures[0].is_done:
            f = futures.popleft()
            acked, errors = (acked + 1, errors) if f.succeeded() else (acked, errors + 1)
    producer.flush(timeout=120)
    secs = time.perf_counter() - t0
    for f in futures:
        acked, errors = (acked + 1, errors) if f.succeeded() else (acked, errors + 1)
    producer.close(timeout=10)
    return _figures(acked, errors, secs)


def confluent_produce(bootstrap: str, topic: str, dur: float) -> dict[str, float]:
    from confluent_kafka import Producer as ConfluentProducer

    counts = {"acked": 0, "errors": 0, "t_last": 0.0}

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            counts["acked"] += 1
            counts["t_last"] = time.perf_counter()
        else:
            counts["errors"] += 1

    producer = ConfluentProducer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": LINGER_MS,
            "batch.size": BATCH_BYTES,
            "enable.idempotence": False,
            "compression.type": "none",
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": 60_000,
            "on_delivery": delivered,
        }
    )
    value = b"x" * SIZE
    t0 = time.perf_counter()
    deadline = t0 + dur
    while time.perf_counter() < deadline:
        for _ in range(1000):
            try:
                producer.produce(topic, value, partition=0)
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    producer.flush(120)
    secs = (counts["t_last"] or time.perf_counter()) - t0
    return _figures(counts["acked"], counts["errors"], secs)


# -- consumers ---------------------------------------------------------------------------------


async def ours_consume(bootstrap: str, topic: str, total: int) -> dict[str, float]:
    async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, 0)])
        await consumer.seek_to_beginning()
        got = 0
        t0 = time.perf_counter()
        with trio.move_on_after(120):
            while got < total:
                await consumer.getone()
                got += 1
        secs = time.perf_counter() - t0
    return {"read": got, "secs": round(secs, 3), "msgs_s": round(got / secs) if secs else 0}


def confluent_consume(bootstrap: str, topic: str, total: int) -> dict[str, float]:
    from bench._common import consume_all

    figures = consume_all(bootstrap, topic, 0, total, SIZE)
    return {k: figures[k] for k in ("read", "secs", "msgs_s")}


# -- the run -----------------------------------------------------------------------------------


async def bench_cluster(args: argparse.Namespace) -> dict[str, object]:
    cluster = DevCluster(free_base_port())
    results: dict[str, list[dict]] = {"ours": [], "kafka_python": [], "confluent": []}
    reads: dict[str, list[dict]] = {"ours": [], "confluent": []}
    try:
        await cluster.ready()
        for run in range(args.runs):
            for name in ("ours", "kafka_python", "confluent"):
                topic = f"w1-{name}-{run}"
                await cluster.create_topic(topic)
                with section(f"W1 produce, {name}, run {run}"):
                    figures = await _produce(name, cluster.bootstrap, topic, args)
                out(f"   {figures}")
                results[name].append(figures)
            total = results["ours"][-1]["acked"]
            with section(f"read back {total} records, ours"):
                reads["ours"].append(await ours_consume(cluster.bootstrap, f"w1-ours-{run}", total))
            with section(f"read back {total} records, confluent-kafka"):
                reads["confluent"].append(
                    await trio.to_thread.run_sync(
                        confluent_consume, cluster.bootstrap, f"w1-ours-{run}", total
                    )
                )
            out(f"   ours {reads['ours'][-1]}, confluent {reads['confluent'][-1]}")
    finally:
        cluster.stop()
    figures: dict[str, object] = {}
    for name, rows in results.items():
        figures[f"w1_{name}_msgs_s"] = round(median([r["msgs_s"] for r in rows]))
        figures[f"w1_{name}_errors"] = sum(r["errors"] for r in rows)
    for name, rows in reads.items():
        figures[f"read_{name}_msgs_s"] = round(median([r["msgs_s"] for r in rows]))
    return figures


async def _produce(name: str, bootstrap: str, topic: str, args: argparse.Namespace) -> dict:
    if name == "ours":
        if not args.profile:
            return await ours_produce(bootstrap, topic, args.dur)
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return await ours_produce(bootstrap, topic, args.dur)
        finally:
            profiler.disable()
            profiler.dump_stats(args.profile)
            out(f"   profile written to {args.profile}")
    work = kafka_python_produce if name == "kafka_python" else confluent_produce
    return await trio.to_thread.run_sync(work, bootstrap, topic, args.dur)


def bench_nats(args: argparse.Namespace) -> float | None:
    pdir = peers_dir(args.peers_dir)
    ensure_peer_tools(pdir, need_go=False)
    rows = run_peer(
        pdir,
        ["nats_bench.py", "pub", "--replicas", "3", "--size", str(SIZE), "--dur", str(args.dur),
         "--runs", str(args.runs)],
        timeout=args.runs * (args.dur + 60) + 120,
    )  # fmt: skip
    rates = [r["msgs_per_s"] for r in rows if r.get("wl") == f"pub{SIZE}B"]
    return round(median(rates)) if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dur", type=float, default=8.0, help="seconds per producer run")
    parser.add_argument("--runs", type=int, default=1, help="runs per client (median reported)")
    parser.add_argument("--no-peers", action="store_true", help="skip nats-py JetStream R3")
    parser.add_argument("--peers-dir", default=None, help="shared/bench-peers")
    parser.add_argument("--profile", default=None, help="cProfile our producer into FILE")
    args = parser.parse_args()
    exit_on_sigterm()
    figures = trio.run(bench_cluster, args)
    nats_r3 = None
    if not args.no_peers:
        with section("nats-py -> JetStream R3 (shared/bench-peers/nats_bench.py)"):
            nats_r3 = bench_nats(args)
    ours = figures["w1_ours_msgs_s"]
    summary = {
        "bench": "clients",
        "workload": "W1 100 B, acks=all, RF=3, min.insync.replicas=2, 1 partition",
        "dur_s": args.dur,
        "runs": args.runs,
        **figures,
        "w1_nats_py_r3_msgs_s": nats_r3,
        "ours_vs_kafka_python": ratio(ours, figures["w1_kafka_python_msgs_s"]),
        "ours_vs_nats_py_r3": ratio(ours, nats_r3),
        "ours_vs_confluent": ratio(ours, figures["w1_confluent_msgs_s"]),
        "goal_vs_kafka_python": 1.0,
        "goal_vs_nats_py_r3": 2.0,
    }
    out(
        "ours/kafka-python",
        summary["ours_vs_kafka_python"],
        "ours/nats-py R3",
        summary["ours_vs_nats_py_r3"],
    )
    emit_json(summary)


if __name__ == "__main__":
    main()
