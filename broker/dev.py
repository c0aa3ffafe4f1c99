"""`trilog dev`: the embedded default, a local cluster of broker processes.

Broker i listens for clients on 127.0.0.1:(base_port + i - 1) and for the
controller quorum on 127.0.0.1:(base_port + 100 + i - 1); every broker is
also a quorum voter (combined mode, as a small Kafka KRaft cluster). It keeps
its data under
DIR/broker-<i>/, its effective config in DIR/broker-<i>/broker.toml (so
`trilog broker start --config` restarts it alone) and its process id in
DIR/broker-<i>/broker.pid. Ctrl-C or SIGTERM stops every broker with SIGTERM
(a clean shutdown); a broker that dies is reported, not restarted.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import trio

from broker.config import BrokerConfig, dump_config

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30
READY_DEADLINE_S = 60


CONTROLLER_PORT_OFFSET = 100
DEV_CONTROLLER = {
    # Fast failure detection for a local cluster (Kafka: 9 s session, 1 s election):
    # a dead leader is replaced in about two seconds. The price is more heartbeat
    # traffic, which loopback does not mind.
    "election_timeout_ms": 400,
    "quorum_heartbeat_interval_ms": 80,
    "broker_session_timeout_ms": 1500,
    "broker_heartbeat_interval_ms": 250,
}


def broker_config(data_dir: Path, node_id: int, base_port: int, brokers: int) -> BrokerConfig:
    """Broker node_id's effective config in a dev cluster of `brokers` nodes."""
    base = BrokerConfig()
    home = (data_dir / f"broker-{node_id}").resolve()
    quorum_port = base_port + CONTROLLER_PORT_OFFSET
    voters = ",".join(f"{i}@127.0.0.1:{quorum_port + i - 1}" for i in range(1, brokers + 1))
    factor = min(3, brokers)
    return replace(
        base,
        broker=replace(base.broker, node_id=node_id, data_dir=str(home)),
        network=replace(base.network, listeners=f"PLAINTEXT://127.0.0.1:{base_port + node_id - 1}"),
        log=replace(
            base.log, default_replication_factor=factor, min_insync_replicas=min(2, factor)
        ),
        controller=replace(
            base.controller,
            quorum_voters=voters,
            listener=f"127.0.0.1:{quorum_port + node_id - 1}",
            **DEV_CONTROLLER,
        ),
        source=str(home / "broker.toml"),
        base_dir=str(home),
    )


def write_broker_files(config: BrokerConfig) -> Path:
    home = Path(config.base_dir)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "broker.toml"
    path.write_text(dump_config(config))
    return path


async def run_dev(brokers: int, data_dir: Path, base_port: int, echo) -> int:
    """Start the brokers, wait for a signal or for all of them to die; exit code."""
    procs: dict[int, trio.Process] = {}
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            all_dead = trio.Event()
            for node_id in range(1, brokers + 1):
                config = broker_config(data_dir, node_id, base_port, brokers)
                path = write_broker_files(config)
                proc = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "broker.cli", "broker", "start", "--config", str(path)],
                    stdin=subprocess.DEVNULL,
                )
                procs[node_id] = proc
                (path.parent / "broker.pid").write_text(f"{proc.pid}\n")
                nursery.start_soon(_watch, node_id, proc, procs, all_dead, echo)
            ports = ",".join(f"127.0.0.1:{base_port + i - 1}" for i in procs)
            echo(f"trilog dev: {brokers} broker(s), data in {data_dir}")
            echo(f"bootstrap: {ports}")
            echo("Ctrl-C stops the cluster.")
            nursery.start_soon(_wait_signal, signals, nursery.cancel_scope)
            nursery.start_soon(_report_state, base_port, brokers, echo)
            await all_dead.wait()
            nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await _stop_all(procs, echo)
    return 0


async def _report_state(base_port: int, brokers: int, echo) -> None:
    """Once every broker is registered, print one line of cluster state."""
    from producer.client import KafkaClientError, connect
    from protocol.api import ApiKey

    with trio.move_on_after(READY_DEADLINE_S) as waited:
        while True:
            try:
                async with connect("127.0.0.1", base_port, timeout_s=5) as conn:
                    answer = await conn.request(ApiKey.METADATA, {"topics": None})
                if len(answer.brokers) == brokers:
                    ids = ",".join(
                        str(b.node_id) for b in sorted(answer.brokers, key=lambda b: b.node_id)
                    )
                    echo(
                        f"trilog dev: cluster ready: brokers {ids} up, active controller "
                        f"{answer.controller_id}, {len(answer.topics)} topic(s)"
                    )
                    return
            except (KafkaClientError, OSError, trio.TooSlowError):
                pass
            await trio.sleep(0.2)
    if waited.cancelled_caught:
        echo(
            f"trilog dev: not every broker registered within {READY_DEADLINE_S}s; "
            "see the broker logs above"
        )


async def _wait_signal(signals, scope: trio.CancelScope) -> None:
    async for _ in signals:
        scope.cancel()
        return


async def _watch(node_id, proc, procs, all_dead: trio.Event, echo) -> None:
    code = await proc.wait()
    echo(
        f"trilog dev: broker {node_id} (pid {proc.pid}) exited with code {code}; not restarting it"
    )
    if all(p.returncode is not None for p in procs.values()):
        all_dead.set()


async def _stop_all(procs: dict[int, trio.Process], echo) -> None:
    for proc in procs.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_TIMEOUT_S):
        for proc in procs.values():
            await proc.wait()
    for node_id, proc in procs.items():
        if proc.returncode is None:
            echo(f"trilog dev: broker {node_id} did not stop in {STOP_TIMEOUT_S}s; killing it")
            proc.kill()
            await proc.wait()
    echo("trilog dev: stopped")
