"""W3 on one trilog broker: a confluent-kafka consumer reads everything from the beginning.

Starts one broker (subprocess, free port, temporary data dir, stopped by PID), preloads
--messages values of 100 B into a 1-partition topic, then --runs times a fresh consumer
assigns the partition at the beginning (no group) and reads all of it; messages/s and MB/s
= messages read / time to the last one; median of the runs.

Peer in the same run (the goal of shared/PERFORMANCE.md), unless --no-peers: Redis Streams
XRANGE read-back with redis-py (bench-peers/redis_bench.py pub --wait 0 --size 100 --read,
its "read100B" rows).

  python bench/consume_single.py [--runs 3] [--messages 2000000] [--no-peers]
         [--broker-src DIR]        # run the broker from another checkout (A/B comparisons)

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse

import _common as c

TOPIC = "w3"
SIZE = 100


def run_trilog(a: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    with c.Broker(src=a.broker_src) as broker:
        c.out(f"trilog broker pid {broker.pid} on {broker.bootstrap}, data {broker.dir}")
        with c.section(f"preload {a.messages:,} x {SIZE} B into {TOPIC} (1 partition)"):
            c.create_topic(broker.bootstrap, TOPIC, 1)
            r = c.produce_count(broker.bootstrap, TOPIC, SIZE, a.messages)
            broker.check_alive()
            c.out(f"  acked {r['acked']:,} in {r['secs']} s ({r['msgs_s']:,} msg/s)")
            if r["errors"] or r["acked"] < a.messages:
                raise RuntimeError(f"preload incomplete: {r}")
            total = r["acked"]
        with c.section(f"trilog W3: read {total:,} from the beginning, {a.runs} runs"):
            rates, mbs = [], []
            for run in range(a.runs):
                r = c.consume_all(broker.bootstrap, TOPIC, 0, total, SIZE)
                broker.check_alive()
                c.out(
                    f"  run {run}: read {r['read']:,} in {r['secs']} s (errors {r['errors']}): "
                    f"{r['msgs_s']:,} msg/s, {r['mb_s']} MB/s"
                )
                if r["read"] < total:
                    raise RuntimeError(f"read {r['read']} of {total}")
                rates.append(r["msgs_s"])
                mbs.append(r["mb_s"])
        figures["w3_messages"] = total
        figures["w3_msgs_s"] = round(c.median(rates))
        figures["w3_mb_s"] = round(c.median(mbs), 2)
        c.out(f"  median: {figures['w3_msgs_s']:,} msg/s, {figures['w3_mb_s']} MB/s")
    return figures


def run_peer(a: argparse.Namespace) -> dict[str, float]:
    pdir = c.peers_dir(a.peers_dir)
    c.ensure_peer_tools(pdir, need_go=False)
    with c.section(f"Redis XRANGE read-back (redis-py), after {a.dur:g} s of 100 B XADD"):
        args = ["redis_bench.py", "pub", "--wait", "0", "--size", str(SIZE)]
        args += ["--dur", str(a.dur), "--runs", str(a.runs), "--read"]
        rows = c.run_peer(pdir, args, timeout=a.runs * (a.dur + 60) + 60)
        reads = [r for r in rows if r.get("wl") == f"read{SIZE}B"]
        for r in reads:
            rate = f"{r['msgs_per_s']:,} msg/s"
            c.out(f"  run {r['run']}: read {r['read']:,} in {r['secs']} s: {rate}")
        return {
            "redis_xrange_w3_msgs_s": round(c.median([r["msgs_per_s"] for r in reads])),
            "redis_xrange_w3_messages": round(c.median([r["read"] for r in reads])),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--messages", type=int, default=2_000_000, help="100 B values to preload")
    p.add_argument("--dur", type=float, default=8.0, help="seconds of Redis XADD before XRANGE")
    p.add_argument("--no-peers", action="store_true", help="skip Redis")
    p.add_argument("--broker-src", help="run the broker from this checkout (default: this repo)")
    p.add_argument("--peers-dir", help="shared/bench-peers (default: shared/ beside the repo)")
    a = p.parse_args()
    c.exit_on_sigterm()

    figures: dict[str, object] = dict(run_trilog(a))
    if a.no_peers:
        peer = {"redis_xrange_w3_msgs_s": c.REFERENCE["redis_xrange_w3_msgs_s"]}
        figures["peers"] = "reference, not same run"
        c.out("== peer skipped: reference figure of shared/PERFORMANCE.md (not same run)")
    else:
        peer = run_peer(a)
        figures["peers"] = "same run"
    figures.update(peer)
    figures["w3_vs_redis_xrange"] = c.ratio(figures["w3_msgs_s"], peer["redis_xrange_w3_msgs_s"])
    c.out(
        f"W3 {figures['w3_msgs_s']:,} msg/s vs Redis XRANGE {peer['redis_xrange_w3_msgs_s']:,}: "
        f"{figures['w3_vs_redis_xrange']}x (goal >= 1.0)"
    )
    c.emit_json(figures)


if __name__ == "__main__":
    main()
