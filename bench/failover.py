"""W4: leader failover under an idempotent acks=all producer, on the dev-cluster settings.

Per run a fresh 3-broker cluster (broker.dev settings; every broker is a controller voter;
temporary directory; every process SIGKILLed by PID at the end), a topic with RF=3 and
min.insync.replicas=2, and a confluent-kafka idempotent producer (acks=all) at --rate
messages/s to one partition. At --kill-at seconds the partition's leader is SIGKILLed.
gap = kill -> acknowledgement of the first message sent after the kill. Afterwards the
partition is read back from the new leader and acknowledged messages missing are counted
(must be 0). Runs alternate between a leader that is also the active controller and one that
is not; both medians are reported. A timeline from the brokers' logs (kill -> controller
election -> fence -> new leader -> first ack) shows where the gap goes.

Peers in the same run unless --no-peers: NATS JetStream R3 and Redis + Sentinel
(shared/bench-peers nats_bench.py / redis_bench.py failover).

  python bench/failover.py [--runs 5] [--rate 1000] [--dur 10] [--kill-at 3] [--no-peers]
         [--peer-runs 3] [--broker-src DIR] [--keep DIR]

Ends with one JSON line of its figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import _common as c

sys.path.insert(0, str(c.REPO))

from broker.dev import DEV_CONTROLLER  # noqa: E402
from tests.cluster_faults.clients import SeqProducer, read_partition_raw  # noqa: E402
from tests.cluster_faults.cluster import DevCluster, wait_until  # noqa: E402

TOPIC = "w4"
PARTITIONS = 3  # one partition is picked per run; three give a choice of leader
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@dataclass
class RunResult:
    kind: str  # "controller_leader" or "plain_leader"
    gap_s: float | None
    lost: int
    duplicates: int
    acked: int
    sent: int
    errors: int
    timeline: list[tuple[float, str]] = field(default_factory=list)


def pick_partition(cluster: DevCluster, topic: str, want_controller: bool) -> tuple[int, int, int]:
    """(partition, leader, controller) with the leader being (or not) the active controller."""
    view = cluster.metadata()
    for p in range(PARTITIONS):
        leader = view.partition(topic, p).leader
        if (leader == view.controller_id) == want_controller:
            return p, leader, view.controller_id
    raise LookupError("no partition fits")


def log_events(
    cluster: DevCluster, topic: str, partition: int, t0_wall: float
) -> list[tuple[float, str]]:
    """Failover events from every broker's log, as seconds after the kill (wall clock)."""
    patterns = [
        (re.compile(r"raft node (\d+): candidate -> leader at term (\d+)"), "raft: node {0} leads"),
        (re.compile(r"controller (\d+) active at term"), "controller {0} active"),
        (re.compile(r"broker (\d+) \(epoch \d+\) fenced: (.*)"), "controller fences broker {0}"),
        (
            re.compile(rf"{topic}-{partition} leads at epoch (\d+)"),
            "new leader takes over (epoch {0})",
        ),
    ]
    events = []
    for i in cluster.ids:
        path = cluster.log_path(i)
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stamp = LOG_TIME.match(line)
            if stamp is None:
                continue
            at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if at < t0_wall - 0.01:
                continue
            for pattern, text in patterns:
                found = pattern.search(line)
                if found:
                    events.append((at - t0_wall, f"broker {i}: " + text.format(*found.groups())))
    return sorted(events)


def one_run(a: argparse.Namespace, run: int, root: Path) -> RunResult:
    want_controller = run % 2 == 0
    kind = "controller_leader" if want_controller else "plain_leader"
    cluster = DevCluster(root / f"run{run}", via_dev=False, src=a.broker_src)
    try:
        cluster.start()
        for attempt in range(5):
            topic = f"{TOPIC}-{attempt}"
            cluster.create_topic(topic, PARTITIONS, 3, {"min.insync.replicas": "2"})
            try:
                partition, leader, controller = pick_partition(cluster, topic, want_controller)
                break
            except LookupError:
                continue
        else:
            raise RuntimeError(f"no partition fits {kind}")
        producer = SeqProducer(cluster.bootstrap(), topic, partition=partition)
        sent_at: list[float] = []
        killed: list[tuple[float, float]] = []  # (monotonic, wall)

        def tick(elapsed_s: float) -> None:
            sent_at.append(time.monotonic())
            if not killed and elapsed_s >= a.kill_at:
                wall = time.time()
                killed.append((cluster.kill(leader), wall))

        producer.run(a.dur, rate=a.rate, on_tick=tick)
        left = producer.flush(60)
        t_kill, t_kill_wall = killed[0]
        after = [ack.t_ack for seq, ack in producer.acked.items() if sent_at[seq] > t_kill]
        gap_s = min(after) - t_kill if after else None
        survivor = next(i for i in cluster.live())
        new_leader = wait_until(
            lambda: (
                (ld := cluster.leader_of(topic, partition, via=survivor)) not in (-1, leader) and ld
            ),
            30,
            "new leader",
        )
        records = read_partition_raw(cluster.port(new_leader), topic, partition)
        stored = [int(v[:10]) for _, v in records]
        at = {o: int(v[:10]) for o, v in records}
        lost = sum(1 for s, ack in producer.acked.items() if at.get(ack.offset) != s)
        timeline = log_events(cluster, topic, partition, t_kill_wall)
        if gap_s is not None:
            timeline.append(
                (gap_s, "client: first acknowledgement of a message sent after the kill")
            )
        timeline.sort()
        c.out(
            f"  run {run} ({kind}: leader {leader}, controller {controller}): "
            f"gap {gap_s if gap_s is None else round(gap_s, 3)} s, acked {len(producer.acked):,}"
            f"/{producer.sent:,}, lost {lost}, duplicates {len(stored) - len(set(stored))}, "
            f"errors {len(producer.errors)}, unflushed {left}"
        )
        for at_s, text in timeline:
            c.out(f"      +{at_s:6.3f} s  {text}")
        return RunResult(
            kind,
            gap_s,
            lost,
            len(stored) - len(set(stored)),
            len(producer.acked),
            producer.sent,
            len(producer.errors),
            timeline,
        )
    finally:
        cluster.close()


def run_trilog(a: argparse.Namespace) -> dict[str, object]:
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="trilog-failover-"))
    results: list[RunResult] = []
    try:
        with c.section(f"trilog W4: {a.runs} run(s), {a.rate}/s, SIGKILL leader at {a.kill_at} s"):
            for run in range(a.runs):
                results.append(one_run(a, run, root))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    gaps = [r.gap_s for r in results if r.gap_s is not None]
    by_kind = {
        kind: [r.gap_s for r in results if r.kind == kind and r.gap_s is not None]
        for kind in ("controller_leader", "plain_leader")
    }
    figures = {
        "gap_s_median": round(c.median(gaps), 3) if gaps else None,
        "gap_s_controller_leader": round(c.median(by_kind["controller_leader"]), 3)
        if by_kind["controller_leader"]
        else None,
        "gap_s_plain_leader": round(c.median(by_kind["plain_leader"]), 3)
        if by_kind["plain_leader"]
        else None,
        "lost": sum(r.lost for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "runs_without_recovery": sum(1 for r in results if r.gap_s is None),
    }
    c.out(
        f"  median gap {figures['gap_s_median']} s (controller+leader killed: "
        f"{figures['gap_s_controller_leader']} s, leader only: {figures['gap_s_plain_leader']} s), "
        f"lost {figures['lost']}"
    )
    return figures


def explain_settings() -> None:
    s = DEV_CONTROLLER
    c.out("== what sets the gap (broker/dev.py DEV_CONTROLLER)")
    c.out(
        f"  broker.session.timeout.ms = {s['broker_session_timeout_ms']}: a dead broker is "
        "fenced (its leaderships moved) only after this much heartbeat silence; it is the "
        "floor of every gap. Cost: a broker paused longer (GC, swap, a 2-core machine "
        "saturated by a bench) is fenced needlessly and its partitions move."
    )
    c.out(
        f"  broker.heartbeat.interval.ms = {s['broker_heartbeat_interval_ms']}: 6 heartbeats "
        "per session; each is a controller round-trip and, when the controller commits "
        "it, no metadata write. Cost: N brokers x 4/s requests to the controller."
    )
    c.out(
        f"  controller.quorum.election.timeout.ms = {s['election_timeout_ms']} "
        f"(randomised up to 2x), quorum heartbeat {s['quorum_heartbeat_interval_ms']} ms: "
        "adds 0.4-0.8 s when the dead leader was also the active controller, plus the new "
        "controller's activation grace (one session timeout) before it fences anyone. "
        "Cost: spurious elections if the quorum leader stalls for > 0.4 s."
    )
    c.out(
        "  client side: librdkafka learns the new leader from a Metadata refresh after "
        "NOT_LEADER/transport errors (retry.backoff.ms, topic.metadata.refresh.* settings)."
    )


def ensure_sentinel() -> None:
    """redis-sentinel is a package of its own (run_all.sh installs it too)."""
    if shutil.which("redis-sentinel") is None:
        c.out("  installing redis-sentinel (apt-get) ...")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-sentinel"],
            check=True,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )


def run_peers(a: argparse.Namespace) -> dict[str, object]:
    pdir = c.peers_dir(a.peers_dir)
    c.ensure_peer_tools(pdir, need_go=False)
    ensure_sentinel()
    figures: dict[str, object] = {}
    with c.section(f"NATS JetStream R3 failover ({a.peer_runs} runs)"):
        rows = c.run_peer(
            pdir,
            [
                "nats_bench.py",
                "failover",
                "--runs",
                str(a.peer_runs),
                "--dur",
                "20",
                "--kill-at",
                "3",
            ],
            timeout=a.peer_runs * 60 + 60,
        )
        gaps = [r["gap_s"] for r in rows if r.get("gap_s") is not None]
        figures["nats_r3_gap_s"] = round(c.median(gaps), 3) if gaps else None
        figures["nats_r3_lost"] = sum(r.get("missing_acked", 0) for r in rows)
        c.out(f"  gaps {gaps}, median {figures['nats_r3_gap_s']} s, lost {figures['nats_r3_lost']}")
    with c.section(f"Redis + Sentinel failover ({a.peer_runs} runs)"):
        rows = c.run_peer(
            pdir,
            [
                "redis_bench.py",
                "failover",
                "--runs",
                str(a.peer_runs),
                "--dur",
                "12",
                "--kill-at",
                "3",
                "--down-ms",
                "1000",
            ],
            timeout=a.peer_runs * 45 + 60,
        )
        gaps = [r["gap_s"] for r in rows if r.get("gap_s") is not None]
        figures["redis_sentinel_gap_s"] = round(c.median(gaps), 3) if gaps else None
        figures["redis_sentinel_lost"] = sum(r.get("missing_acked", 0) for r in rows)
        c.out(
            f"  gaps {gaps}, median {figures['redis_sentinel_gap_s']} s, "
            f"lost {figures['redis_sentinel_lost']}"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer-runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--dur", type=float, default=10.0)
    parser.add_argument("--kill-at", type=float, default=3.0)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peers-dir", default=None)
    parser.add_argument("--broker-src", default=None, help="run the brokers from this checkout")
    parser.add_argument("--keep", default=None, help="keep the clusters' files under this dir")
    a = parser.parse_args()
    c.exit_on_sigterm()
    explain_settings()
    figures = run_trilog(a)
    peers = {} if a.no_peers else run_peers(a)
    figures.update(peers)
    figures["vs_nats"] = c.ratio(figures["gap_s_median"], peers.get("nats_r3_gap_s"))
    figures["vs_redis"] = c.ratio(figures["gap_s_median"], peers.get("redis_sentinel_gap_s"))
    if a.no_peers:
        c.out("(no peers: PERFORMANCE.md reference NATS R3 4.44 s, Redis+Sentinel 2.27 s)")
    c.out("goal: gap <= 0.5x NATS R3 (vs_nats <= 0.5) and <= 1.0x Redis+Sentinel, 0 lost")
    c.emit_json(figures)


if __name__ == "__main__":
    main()
