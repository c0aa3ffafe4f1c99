"""W1/W2 on one trilog broker: confluent-kafka producer, acks=1, many in flight.

Starts one broker (subprocess, free port, temporary data dir, stopped by PID), creates a
1-partition topic per run and publishes 100 B (W1) and 1 KiB (W2) values for --dur seconds;
messages/s and MB/s = acknowledged messages / time to the last acknowledgement; median of
--runs; after each run the topic's log end must hold every acknowledged message. W1 is also
run on a 3-partition topic (skip with --no-3p).

Peers in the same run (the goals of shared/PERFORMANCE.md), unless --no-peers:
  W1 vs Redis Streams XADD with redis-benchmark (bench-peers/redis_ceiling.py, "fastest, no WAIT")
  W2 MB/s vs NATS JetStream R1 with the Go client (bench-peers/nats_bench.py gopub --replicas 1)

  python bench/produce_single.py [--runs 3] [--dur 8] [--no-peers] [--no-3p]
         [--profile /tmp/w1.svg]   # py-spy record of the broker during one extra W1 run
         [--broker-src DIR]        # run the broker from another checkout (A/B comparisons)

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

import _common as c


def run_trilog(a: argparse.Namespace) -> dict[str, object]:
    figures: dict[str, object] = {}
    cases = [("w1", 100, 1), ("w2", 1024, 1)]
    if not a.no_3p:
        cases.append(("w1_3p", 100, 3))
    with c.Broker(src=a.broker_src) as broker:
        c.out(f"trilog broker pid {broker.pid} on {broker.bootstrap}, data {broker.dir}")
        for name, size, partitions in cases:
            with c.section(f"trilog {name}: {size} B, {partitions} partition(s), {a.dur:g} s"):
                rates, mbs = [], []
                for run in range(a.runs):
                    topic = f"{name}-{run}"
                    c.create_topic(broker.bootstrap, topic, partitions)
                    part = 0 if partitions == 1 else None
                    r = c.produce_for(broker.bootstrap, topic, size, a.dur, partition=part)
                    broker.check_alive()
                    held = c.log_end_offsets(broker.bootstrap, topic, partitions)
                    if held < r["acked"]:
                        raise RuntimeError(f"{topic}: {r['acked']} acked, log end {held}")
                    c.out(
                        f"  run {run}: acked {r['acked']:,} in {r['secs']} s "
                        f"(sent for {r['send_secs']} s, errors {r['errors']}): "
                        f"{r['msgs_s']:,} msg/s, {r['mb_s']} MB/s"
                    )
                    rates.append(r["msgs_s"])
                    mbs.append(r["mb_s"])
                figures[f"{name}_msgs_s"] = round(c.median(rates))
                figures[f"{name}_mb_s"] = round(c.median(mbs), 2)
                rate = f"{figures[f'{name}_msgs_s']:,} msg/s, {figures[f'{name}_mb_s']} MB/s"
                c.out(f"  median: {rate}")
        if a.profile:
            profile_w1(broker, a)
    return figures


def profile_w1(broker: c.Broker, a: argparse.Namespace) -> None:
    """py-spy record of the broker during one more W1 run (not counted in the figures)."""
    if shutil.which("py-spy") is None:
        c.out("  !! py-spy not found (pip install py-spy); no profile")
        return
    with c.section(f"profile: py-spy record of broker pid {broker.pid} during W1 -> {a.profile}"):
        topic = "w1-profile"
        c.create_topic(broker.bootstrap, topic, 1)
        fmt = "speedscope" if a.profile.endswith(".json") else "flamegraph"
        cmd = ["py-spy", "record", "--pid", str(broker.pid), "--rate", "200"]
        cmd += ["--duration", str(int(a.dur) + 1), "--format", fmt, "-o", a.profile]
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            r = c.produce_for(broker.bootstrap, topic, 100, a.dur)
            c.out(f"  W1 under py-spy: {r['msgs_s']:,} msg/s")
            _, err = spy.communicate(timeout=60)
            c.out(f"  py-spy rc={spy.returncode} {err.strip().splitlines()[-1] if err else ''}")
        finally:
            if spy.poll() is None:
                spy.terminate()
                spy.wait(timeout=10)


def run_peers(a: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    pdir = c.peers_dir(a.peers_dir)
    c.ensure_peer_tools(pdir, need_go=True)
    with c.section("redis-benchmark XADD, 100 B, -c 4 -P 1000, primary + 2 replicas, no WAIT"):
        args = ["redis_ceiling.py", "--runs", str(a.runs), "--n100", str(a.redis_n)]
        args += ["--n1k", "1000"]  # W2 is compared with NATS; keep Redis' 1 KiB pass trivial
        rows = c.run_peer(pdir, args, timeout=300)
        w1 = [r for r in rows if r.get("wl") == "pub100B"]
        for r in w1:
            c.out(f"  run {r['run']}: {r['msgs_per_s']:,} msg/s, {r['mb_per_s']} MB/s")
        figures["redis_benchmark_w1_msgs_s"] = round(c.median([r["msgs_per_s"] for r in w1]))
        figures["redis_benchmark_w1_mb_s"] = round(c.median([r["mb_per_s"] for r in w1]), 2)
    with c.section(f"NATS JetStream R1, Go client, 1 KiB, {a.dur:g} s"):
        args = ["nats_bench.py", "gopub", "--replicas", "1", "--size", "1024"]
        args += ["--dur", str(a.dur), "--runs", str(a.runs), "--gobin", str(c.NATS_GOBIN)]
        rows = c.run_peer(pdir, args, timeout=a.runs * (a.dur + 70) + 60)
        for r in rows:
            c.out(f"  run {r['run']}: {r['msgs_per_s']:,} msg/s, {r['mb_per_s']} MB/s")
        figures["nats_r1_go_w2_msgs_s"] = round(c.median([r["msgs_per_s"] for r in rows]))
        figures["nats_r1_go_w2_mb_s"] = round(c.median([r["mb_per_s"] for r in rows]), 2)
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dur", type=float, default=8.0, help="seconds of publishing per run")
    p.add_argument("--no-peers", action="store_true", help="skip Redis and NATS")
    p.add_argument("--no-3p", action="store_true", help="skip W1 on a 3-partition topic")
    p.add_argument("--peers-dir", help="shared/bench-peers (default: shared/ beside the repo)")
    p.add_argument("--redis-n", type=int, default=3_000_000, help="redis-benchmark XADDs per run")
    p.add_argument("--broker-src", help="run the broker from this checkout (default: this repo)")
    p.add_argument("--profile", help="py-spy record the broker in one extra W1 run (.svg/.json)")
    a = p.parse_args()
    c.exit_on_sigterm()

    figures = run_trilog(a)
    if a.no_peers:
        ref = c.REFERENCE
        peers = {
            "redis_benchmark_w1_msgs_s": ref["redis_benchmark_w1_msgs_s"],
            "nats_r1_go_w2_mb_s": ref["nats_r1_go_w2_mb_s"],
        }
        figures["peers"] = "reference, not same run"
        c.out("== peers skipped: reference figures of shared/PERFORMANCE.md (not same run)")
    else:
        peers = run_peers(a)
        figures["peers"] = "same run"
    figures.update(peers)
    figures["w1_vs_redis"] = c.ratio(figures["w1_msgs_s"], peers["redis_benchmark_w1_msgs_s"])
    figures["w2_vs_nats_r1"] = c.ratio(figures["w2_mb_s"], peers["nats_r1_go_w2_mb_s"])
    c.out(
        f"W1 {figures['w1_msgs_s']:,} msg/s vs Redis redis-benchmark "
        f"{peers['redis_benchmark_w1_msgs_s']:,}: {figures['w1_vs_redis']}x (goal >= 1.0)"
    )
    c.out(
        f"W2 {figures['w2_mb_s']} MB/s vs NATS R1 Go {peers['nats_r1_go_w2_mb_s']} MB/s: "
        f"{figures['w2_vs_nats_r1']}x (goal >= 1.0)"
    )
    c.emit_json(figures)


if __name__ == "__main__":
    main()
