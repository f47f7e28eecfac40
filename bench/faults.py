"""Jobs under faults: three batches of 200 expansion jobs, each hit by one fault mid-batch.

1. ``redis``: the broker's Redis (a private redis-server on a free port, without
   persistence, so that a restart loses every queued message) is restarted;
2. ``kill``: one of the two worker processes is SIGKILLed and started again;
3. ``postgres``: every connection to the benchmark's database is terminated
   (``pg_terminate_backend``), workers' and beat's alike.

Setup: a fresh PostgreSQL database (``bench_faults``, dropped first), the simulated endpoint
in this process with about 20 % faults (429, 500, streams cut halfway, empty answers: 5 %
each), two Celery worker processes (threads pool) and beat, with the periodic sweeps every
``--sweep`` seconds (EXPANSION_SWEEP_SECONDS) and a lost message re-sent after ``--resend``
seconds (EXPANSION_RESEND_AFTER_SECONDS). The fault strikes once a third of the batch has
finished.

Printed per batch: lost (jobs not succeeded when the batch timed out, or failed),
duplicated (trace rows beyond one per job), paid twice after a good answer (jobs the
simulator streamed more than one whole, fault-free answer to: the second one was paid for
again) and the seconds from queueing the batch to its last job finishing. All three counts
must be 0.

    .venv/bin/python bench/faults.py [--jobs 200] [--sweep 10] [--resend 20]
"""

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg
from support import PG, ROOT, fresh_database, spawn, stop, submitted_annotation

DB = "bench_faults"
FAULTS = {kind: {"rate": 0.05} for kind in ("rate_limit", "server_error", "drop", "empty")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, directory: str) -> subprocess.Popen:
    """A redis-server of our own, without persistence (the shared one is never touched)."""
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return redis
        except OSError:
            time.sleep(0.1)
    redis.kill()
    sys.exit("redis-server did not start")


def counting_good_answers(good: Counter) -> None:
    """Count, per sample index (one per job), the whole answers the simulator streamed
    without a fault: each one was paid for."""
    from expansion import simulator

    stream = simulator._Handler._stream

    def counted(self, base, parts, finish, usage, wants_usage, cfg, fault, admitted):
        stream(self, base, parts, finish, usage, wants_usage, cfg, fault, admitted)
        if fault is None:
            good[self.headers.get("X-Journey-Sample")] += 1

    simulator._Handler._stream = counted


def seed(base_url: str, capacity: int):
    return submitted_annotation(base_url=base_url, capacity=capacity, timeout_seconds=60)


def terminate_connections() -> int:
    from django.db import connection

    connection.close()  # this process's own, idle: it reconnects on its next query
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [DB]
        ).fetchall()
    return len(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=16, help="requests in flight")
    parser.add_argument("--seconds-per-answer", type=float, default=1.5)
    parser.add_argument("--tokens", type=int, default=300, help="tokens per answer")
    parser.add_argument("--sweep", type=int, default=10, help="EXPANSION_SWEEP_SECONDS")
    parser.add_argument("--resend", type=int, default=20, help="EXPANSION_RESEND_AFTER_SECONDS")
    parser.add_argument("--stale", type=int, default=20,
                        help="EXPANSION_HEARTBEAT_STALE_SECONDS")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=400, help="seconds per batch")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("needs the redis-server program")

    var_dir = tempfile.mkdtemp(prefix="bench-faults-")
    port = free_port()
    redis = start_redis(port, var_dir)
    os.environ.update(
        DATABASE_URL=fresh_database(DB), REDIS_URL=f"redis://127.0.0.1:{port}/0", DEBUG="0",
        VAR_DIR=var_dir, SECRET_KEY=secrets.token_urlsafe(40),
        PSEUDONYM_KEY=secrets.token_urlsafe(32), DJANGO_SETTINGS_MODULE="config.settings",
        EXPANSION_SAMPLES="0", EXPANSION_SWEEP_SECONDS=str(args.sweep),
        EXPANSION_RESEND_AFTER_SECONDS=str(args.resend),
        EXPANSION_HEARTBEAT_STALE_SECONDS=str(args.stale),
    )  # fmt: skip
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import OperationalError, connection
    from django.db.models import Count

    from devtools.simulator import SimulatedLLM
    from expansion.models import Trace
    from expansion.services import traces_request

    good: Counter = Counter()
    counting_good_answers(good)
    sim = SimulatedLLM(capacity=args.capacity, target_tokens=args.tokens, faults=FAULTS,
                       seconds_per_token=args.seconds_per_answer / args.tokens,
                       retry_after=1)  # fmt: skip
    sim.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    log = open(Path(var_dir) / "processes.log", "w")  # noqa: SIM115 (closed in finally)
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    worker = [*celery, "worker", "-Q", "expansion,celery", "-P", "threads", "-c", "8"]
    worker += ["--loglevel=WARNING", "--without-mingle", "--without-gossip"]
    beat = [*celery, "beat", "-s", str(Path(var_dir) / "beat-schedule"), "--loglevel=WARNING"]
    processes: dict[str, subprocess.Popen] = {}
    results = []
    try:
        submitted, endpoint = seed(sim.base_url, args.capacity)
        for name in ("w1", "w2"):
            processes[name] = spawn([*worker, "-n", f"{name}@%h"], stdout=log, stderr=log)
        processes["beat"] = spawn(beat, stdout=log, stderr=log)
        print(f"simulator {sim.base_url}: capacity {args.capacity}, {args.tokens} tokens in "
              f"{args.seconds_per_answer} s, faults {sorted(FAULTS)} at 5 % each; 2 workers "
              f"(threads -c 8) + beat every {args.sweep} s; re-send after {args.resend} s, "
              f"stale heartbeat after {args.stale} s; logs in {var_dir}")  # fmt: skip

        for fault in ("redis", "kill", "postgres"):
            queued = time.monotonic()
            traces = traces_request(annotation=submitted, endpoint=endpoint, samples=args.jobs,
                                    extra=True)  # fmt: skip
            batch = Trace.objects.filter(pk__in=[t.pk for t in traces])
            samples = {str(t.sample_index) for t in traces}
            struck, deadline = None, queued + args.timeout
            while time.monotonic() < deadline:
                try:
                    finished = batch.exclude(status__in=["queued", "running"]).count()
                except OperationalError:
                    connection.close()
                    time.sleep(0.5)
                    continue
                if finished == len(traces):
                    break
                if struck is None and finished >= len(traces) // 3:
                    struck = time.monotonic() - queued
                    if fault == "redis":
                        redis.terminate()
                        redis.wait(timeout=10)
                        redis = start_redis(port, var_dir)
                    elif fault == "kill":
                        stop(processes["w1"], signal.SIGKILL, wait=30)
                        processes["w1"] = spawn([*worker, "-n", "w1@%h"], stdout=log, stderr=log)
                    else:
                        print(f"  terminated {terminate_connections()} connections")
                    print(f"  {fault}: struck after {struck:.1f} s, {finished} finished")
                time.sleep(0.5)
            took = time.monotonic() - queued
            by_status = dict(batch.values_list("status").annotate(n=Count("pk")).order_by())
            rows = Trace.objects.filter(endpoint=endpoint, sample_index__in=samples)
            keys = rows.values("idempotency_key").distinct().count()
            twice = sum(1 for sample in samples if good[sample] > 1)
            lost = len(traces) - by_status.get("succeeded", 0)
            results.append((fault, lost, rows.count() - keys, twice, took, by_status))
            sends = sum(batch.values_list("sends", flat=True)) - len(traces)
            print(f"  {fault}: {by_status}; lost {lost}, duplicated {rows.count() - keys}, "
                  f"paid twice after a good answer {twice}; all finished {took:.1f} s after "
                  f"queueing; messages re-sent {sends}")  # fmt: skip
    finally:
        for process in processes.values():
            stop(process, wait=30)
        sim.stop()
        redis.kill()
        log.close()

    print(f"\n{args.jobs} jobs per batch, ~20 % endpoint faults, 2 workers + beat")
    print(f"{'fault':<10}{'lost':>6}{'duplicated':>12}{'paid twice':>12}{'all done (s)':>14}")
    for fault, lost, duplicated, twice, took, _ in results:
        print(f"{fault:<10}{lost:>6}{duplicated:>12}{twice:>12}{took:>14.1f}")
    clean = all(lost == dup == twice == 0 for _, lost, dup, twice, _, _ in results)
    print(f"target (lost, duplicated, paid twice all 0): {'met' if clean else 'NOT met'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
