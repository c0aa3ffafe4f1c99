"""W1/W2 on 3 brokers: RF=3, acks=all, min.insync.replicas=2, confluent-kafka producer.

Starts a 3-broker cluster on the dev settings (broker.dev; own free ports, a temporary
directory, every process SIGKILLed by PID at the end) and, for 100 B (W1) and 1 KiB (W2)
values, publishes for --dur seconds with many messages in flight: messages/s and MB/s =
acknowledged messages / time to the last acknowledgement, median of --runs, with the
per-message produce latency (delivery report time - produce() time, librdkafka's
msg.latency()) p50/p99/p999. Then one run rate-limited to half the measured maximum reports
the latency there (goal: p99 <= 20 ms). The same on a single-replica topic with acks=1 on
the same cluster, for comparison.

Peers in the same run unless --no-peers: NATS JetStream R3 with its Go client
(nats_bench.py gopub --replicas 3) and Redis with WAIT 2 via redis-py
(redis_bench.py pub --wait 2). Goals: msgs/s >= 2.0x NATS R3 Go and >= 1.0x Redis WAIT 2.

  python bench/produce_replicated.py [--runs 3] [--dur 8] [--no-peers] [--no-rf1]
         [--broker-src DIR]

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as c

sys.path.insert(0, str(c.REPO))

from tests.cluster_faults.cluster import DevCluster  # noqa: E402

SIZES = {"w1": 100, "w2": 1024}
HALF_RATE_BATCH = 50  # messages produced together at the limited rate


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "p999_ms": at(0.999)}


class Latencies:
    """One delivery callback for every message: counts acks and keeps latencies."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.errors = 0
        self.first_error: str | None = None
        self.t_last = 0.0

    def callback(self, err: object, msg: object) -> None:
        if err is None:
            self.values.append(msg.latency())
            self.t_last = time.perf_counter()
        else:
            self.errors += 1
            self.first_error = self.first_error or str(err)


def produce(
    bootstrap: str, topic: str, size: int, acks: object, dur: float, rate: float | None
) -> dict[str, object]:
    """Publish for `dur` s, flat out (rate None) or at `rate` messages/s."""
    from confluent_kafka import Producer

    lat = Latencies()
    conf = c.producer_config(bootstrap)
    conf.update({"acks": acks, "on_delivery": lat.callback})
    if rate is not None:
        conf["linger.ms"] = 1  # a rate-limited producer should not wait to fill batches
    producer = Producer(conf)
    value = b"x" * size
    sent = 0
    t0 = time.perf_counter()
    deadline = t0 + dur
    while time.perf_counter() < deadline:
        burst = 1000 if rate is None else HALF_RATE_BATCH
        for _ in range(burst):
            try:
                producer.produce(topic, value, partition=0)
            except BufferError:
                producer.poll(0.005)
                continue
            sent += 1
        if rate is None:
            producer.poll(0)
            continue
        next_at = t0 + sent / rate
        while (left := next_at - time.perf_counter()) > 0:
            producer.poll(left)
    left = producer.flush(60)
    secs = (lat.t_last or time.perf_counter()) - t0
    acked = len(lat.values)
    if lat.first_error:
        c.out(f"  !! delivery errors: {lat.errors}, first: {lat.first_error}")
    return {
        "sent": sent,
        "acked": acked,
        "errors": lat.errors,
        "unflushed": left,
        "secs": round(secs, 3),
        "msgs_s": round(acked / secs) if secs > 0 else 0,
        "mb_s": round(acked * size / secs / 1e6, 2) if secs > 0 else 0.0,
        **percentiles(lat.values),
    }


def run_case(
    a: argparse.Namespace, cluster: DevCluster, name: str, size: int, rf: int
) -> dict[str, object]:
    acks = "all" if rf > 1 else 1
    config = {"min.insync.replicas": "2"} if rf > 1 else {}
    label = f"{name}_rf{rf}"
    figures: dict[str, object] = {}
    with c.section(f"trilog {label}: {size} B, RF={rf}, acks={acks}, {a.dur:g} s x {a.runs}"):
        rows = []
        for run in range(a.runs):
            topic = f"{label}-{run}"
            cluster.create_topic(topic, 1, rf, config)
            r = produce(cluster.bootstrap(), topic, size, acks, a.dur, None)
            cluster.check_alive()
            held = c.log_end_offsets(cluster.bootstrap(), topic, 1)
            if held < r["acked"]:
                raise RuntimeError(f"{topic}: {r['acked']} acknowledged, log end {held}")
            c.out(
                f"  run {run}: {r['msgs_s']:,} msg/s, {r['mb_s']} MB/s, acked {r['acked']:,}, "
                f"latency p50/p99/p999 {r['p50_ms']}/{r['p99_ms']}/{r['p999_ms']} ms"
            )
            rows.append(r)
        best = sorted(rows, key=lambda r: r["msgs_s"])[len(rows) // 2]
        figures[f"{label}_msgs_s"] = best["msgs_s"]
        figures[f"{label}_mb_s"] = best["mb_s"]
        for key in ("p50_ms", "p99_ms", "p999_ms"):
            figures[f"{label}_max_rate_{key}"] = best[key]
        half = max(1, int(best["msgs_s"] / 2))
        topic = f"{label}-half"
        cluster.create_topic(topic, 1, rf, config)
        r = produce(cluster.bootstrap(), topic, size, acks, a.dur, half)
        c.out(
            f"  at half the maximum ({half:,} msg/s): achieved {r['msgs_s']:,} msg/s, latency "
            f"p50/p99/p999 {r['p50_ms']}/{r['p99_ms']}/{r['p999_ms']} ms"
        )
        figures[f"{label}_half_rate_msgs_s"] = half
        for key in ("p50_ms", "p99_ms", "p999_ms"):
            figures[f"{label}_half_rate_{key}"] = r[key]
    return figures


def run_trilog(a: argparse.Namespace) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="trilog-replicated-"))
    figures: dict[str, object] = {}
    cluster = DevCluster(root, via_dev=False, log_level="WARNING", src=a.broker_src)
    try:
        cluster.start()
        c.out(f"trilog cluster pids {cluster.pids} on {cluster.bootstrap()}, data {root}")
        for name, size in SIZES.items():
            figures.update(run_case(a, cluster, name, size, 3))
        if not a.no_rf1:
            for name, size in SIZES.items():
                figures.update(run_case(a, cluster, name, size, 1))
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
    return figures


def run_peers(a: argparse.Namespace) -> dict[str, object]:
    pdir = c.peers_dir(a.peers_dir)
    c.ensure_peer_tools(pdir, need_go=True)
    figures: dict[str, object] = {}
    for name, size in SIZES.items():
        common = ["--size", str(size), "--dur", str(a.dur), "--runs", str(a.runs)]
        with c.section(f"NATS JetStream R3, Go client: {name} {size} B"):
            rows = c.run_peer(pdir, ["nats_bench.py", "gopub", "--replicas", "3", *common], 300)
            figures[f"nats_r3_go_{name}_msgs_s"] = round(c.median([r["msgs_per_s"] for r in rows]))
            c.out(f"  median {figures[f'nats_r3_go_{name}_msgs_s']:,} msg/s")
        with c.section(f"Redis + 2 replicas, redis-py, WAIT 2: {name} {size} B"):
            rows = c.run_peer(pdir, ["redis_bench.py", "pub", "--wait", "2", *common], 300)
            figures[f"redis_wait2_{name}_msgs_s"] = round(c.median([r["msgs_per_s"] for r in rows]))
            c.out(f"  median {figures[f'redis_wait2_{name}_msgs_s']:,} msg/s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dur", type=float, default=8.0)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-rf1", action="store_true")
    parser.add_argument("--peers-dir", default=None)
    parser.add_argument("--broker-src", default=None, help="run the brokers from this checkout")
    a = parser.parse_args()
    c.exit_on_sigterm()
    figures = run_trilog(a)
    if not a.no_peers:
        peers = run_peers(a)
        figures.update(peers)
        for name in SIZES:
            ours = figures.get(f"{name}_rf3_msgs_s")
            figures[f"{name}_vs_nats_r3_go"] = c.ratio(ours, peers.get(f"nats_r3_go_{name}_msgs_s"))
            figures[f"{name}_vs_redis_wait2"] = c.ratio(
                ours, peers.get(f"redis_wait2_{name}_msgs_s")
            )
    c.out("goals: msgs/s >= 2.0x NATS R3 Go and >= 1.0x Redis WAIT 2; p99 at half rate <= 20 ms")
    c.emit_json(figures)


if __name__ == "__main__":
    main()
