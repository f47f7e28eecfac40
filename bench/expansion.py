"""Expansion throughput: N jobs through one worker host against a capacity-limited endpoint.

Creates a fresh PostgreSQL database (``bench_expansion``, dropped first), flushes Redis db 12
(broker and the shared endpoint limiter), migrates, and starts the simulated LLM
(``manage.py llm_simulator``) as a subprocess on a free loopback port: ``--capacity``
requests in flight, answers of ``--tokens`` tokens taking ``--seconds-per-answer`` each,
429 beyond capacity. In this process it seeds one submitted annotation and an endpoint on
the simulator with ``max_in_flight = capacity``, then queues ``--jobs`` traces with
``traces_request(extra=True)``. Only then does it start ONE Celery worker (threads pool,
``--concurrency`` threads), so the queue is full when the worker comes up.

The clock runs from the first trace's ``started_at`` (claimed by the worker) to the last
``finished_at``, both read from the database; worker start-up is printed separately. The
endpoint's limit is capacity / latency per answer, the latency coming from the simulator's
settings (tokens x seconds per token; no time to first token). With N jobs in waves of
``capacity``, even a perfect scheduler is bounded by N / (capacity x ceil(N / capacity)) of
the limit; that bound is printed too. 429 share and completions come from the simulator's
``/_sim/stats``; duplicates = completions at the simulator - succeeded traces. Peak worker
memory is the summed VmRSS of the worker's process group, sampled every 0.2 s. Figures are
printed, never asserted. Target: >= 0.95 of the limit, < 5 % of requests answered 429.

    .venv/bin/python bench/expansion.py [--jobs 500] [--capacity 32] [--concurrency 48]
"""

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
PG, DB = "postgres://postgres@127.0.0.1:5432/", "bench_expansion"
REDIS_URL = "redis://127.0.0.1:6379/12"
STEPS = [
    {"kind": "attempt", "text": "Guess x equals three since three plus three", "notes": ["2x"]},
    {"kind": "reflection", "text": "Three plus three gives six, not eight", "notes": []},
    {"kind": "correction", "text": "Choose four: four plus four equals eight", "notes": []},
]


def group_stat(pgid: int) -> tuple[int, float]:
    """(summed VmRSS in kB, summed CPU seconds) of the processes in process group ``pgid``."""
    rss, ticks = 0, 0
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if not entry.isdigit() or int(fields[2]) != pgid:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
            status = Path(f"/proc/{entry}/status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        except (OSError, ValueError, AttributeError):
            continue  # not a process, or it exited while we looked
    return rss, ticks / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def seed(args, base_url: str) -> int:
    """One submitted annotation, an endpoint on the simulator, N queued traces; endpoint id."""
    import django

    sys.path.insert(0, str(ROOT))  # config, annotator, expansion
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from annotator import services as annotator
    from annotator.models import Problem
    from annotator.roles import Role
    from expansion.models import LLMEndpoint
    from expansion.services import traces_request

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-annotator")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])
    Problem.objects.create(
        source="bench", external_id="p1", statement="Find $x$ with $x+x=8$.", reference_answer="4"
    )
    draft = annotator.annotation_claim(annotator=user)
    annotator.annotation_save(
        annotation_id=draft.pk, user=user, base_version=1, steps=STEPS, final_answer="4"
    )
    submitted = annotator.annotation_submit(annotation_id=draft.pk, user=user)
    endpoint = LLMEndpoint.objects.create(
        name="bench", base_url=base_url, model="simulated-journey", is_simulated=True,
        max_in_flight=args.capacity, max_tokens=8192, timeout_seconds=120,
    )  # fmt: skip
    traces_request(annotation=submitted, endpoint=endpoint, samples=args.jobs, extra=True)
    return endpoint.pk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=32, help="requests in flight")
    parser.add_argument("--seconds-per-answer", type=float, default=3.5)
    parser.add_argument("--tokens", type=int, default=1500, help="tokens per answer")
    parser.add_argument("--concurrency", type=int, default=48, help="worker threads")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for jobs")
    args = parser.parse_args()
    seconds_per_token = args.seconds_per_answer / args.tokens

    var_dir = tempfile.mkdtemp(prefix="bench-expansion-")
    env = {"DATABASE_URL": PG + DB, "REDIS_URL": REDIS_URL, "DEBUG": "1", "VAR_DIR": var_dir}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", EXPANSION_SAMPLES="0")
    os.environ.update(env)
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    sim = worker = None
    log = open(Path(var_dir) / "worker.log", "w")  # noqa: SIM115 (closed in finally)
    try:
        manage = [sys.executable, "manage.py", "llm_simulator", "--port", "0", "--quiet"]
        manage += ["--capacity", str(args.capacity), "--target-tokens", str(args.tokens)]
        manage += ["--seconds-per-token", repr(seconds_per_token)]
        sim = subprocess.Popen(
            manage, cwd=ROOT, env=os.environ, stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        base_url = re.search(r"http://\S+/v1", sim.stdout.readline()).group(0)
        endpoint_id = seed(args, base_url)

        from django.db.models import Avg, Count, Max, Min, Sum

        from expansion.models import Trace

        def sim_stats() -> dict:
            stats_url = base_url.removesuffix("/v1") + "/_sim/stats"
            with urllib.request.urlopen(stats_url, timeout=5) as response:
                return json.load(response)

        traces = Trace.objects.filter(endpoint_id=endpoint_id)
        print(
            f"{traces.count()} jobs queued; simulator {base_url}: capacity {args.capacity}, "
            f"{args.tokens} tokens x {seconds_per_token * 1e3:.4f} ms; worker: threads pool, "
            f"-c {args.concurrency}, one host ({os.cpu_count()} CPUs)"
        )
        celery = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "expansion"]
        celery += ["-P", "threads", "-c", str(args.concurrency), "--loglevel=WARNING"]
        celery += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        spawned = time.time()
        worker = subprocess.Popen(
            celery, cwd=ROOT, env=os.environ, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        peak = {"rss": 0, "cpu": 0.0, "stop": False}

        def sample() -> None:
            while not peak["stop"]:
                rss, peak["cpu"] = group_stat(worker.pid)
                peak["rss"] = max(peak["rss"], rss)
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline, next_print = time.monotonic() + args.timeout, time.monotonic() + 10
        unfinished = traces.filter(status__in=[Trace.Status.QUEUED, Trace.Status.RUNNING])
        while (left := unfinished.count()) and time.monotonic() < deadline:
            if worker.poll() is not None:
                sys.exit(f"the worker exited ({worker.returncode}); see {log.name}")
            if time.monotonic() > next_print:
                stats, next_print = sim_stats(), next_print + 10
                print(
                    f"  {time.time() - spawned:5.0f} s: {args.jobs - left} finished, "
                    f"{stats['in_flight']} in flight, {stats['answered_429']} x 429"
                )
            time.sleep(0.5)
        peak["stop"] = True
        sampler.join()
        sim_cpu = group_stat(sim.pid)[1]
        stats = sim_stats()
    finally:
        stop(worker)
        stop(sim)
        log.close()

    agg = traces.aggregate(
        first=Min("started_at"), last=Max("finished_at"), latency=Avg("latency_ms"),
        tokens=Avg("completion_tokens"), attempts=Sum("attempts"),
        keys=Count("idempotency_key", distinct=True),
    )  # fmt: skip
    by_status = dict(traces.values_list("status").annotate(n=Count("pk")).order_by())
    succeeded, failed = by_status.get("succeeded", 0), by_status.get("failed", 0)
    wall = (agg["last"] - agg["first"]).total_seconds() if agg["last"] else float("nan")
    latency = args.tokens * seconds_per_token  # time to first token is 0 in the simulator
    limit = args.capacity / latency
    throughput = succeeded / wall
    fraction = throughput / limit
    waves = math.ceil(args.jobs / args.capacity)
    bound = args.jobs / waves / args.capacity
    share_429 = stats["answered_429"] / max(1, stats["requests"])
    duplicates = stats["completed"] - succeeded
    print(f"\njobs: {args.jobs}; traces {traces.count()}, unique idempotency keys {agg['keys']}")
    print(f"status: {by_status}  (unfinished after the timeout: {left})")
    print(
        f"worker start -> first job claimed: {agg['first'].timestamp() - spawned:.1f} s; "
        f"first claimed -> last finished: {wall:.2f} s"
    )
    print(
        f"answer latency: configured {latency:.3f} s, measured mean {agg['latency'] / 1e3:.3f} s "
        f"({agg['tokens']:.0f} completion tokens); attempts {agg['attempts']}"
    )
    print(
        f"throughput: {throughput:.3f} answers/s; endpoint limit {args.capacity} / "
        f"{latency:.2f} s = {limit:.3f} answers/s"
    )
    print(
        f"throughput fraction of the limit: {fraction:.3f}  (target >= 0.95; bound for "
        f"{args.jobs} jobs in {waves} waves of {args.capacity}: {bound:.3f})"
    )
    print(
        f"simulator: {stats['requests']} requests, {stats['completed']} completed, "
        f"{stats['answered_429']} answered 429 = {share_429:.2%} (target < 5%), "
        f"peak in flight {stats['peak_in_flight']}, client disconnects "
        f"{stats['client_disconnects']}"
    )
    print(f"duplicates: {duplicates} (must be 0); failed: {failed}")
    print(
        f"peak worker memory: {peak['rss'] / 1024:.1f} MB RSS; CPU seconds: worker "
        f"{peak['cpu']:.1f}, simulator {sim_cpu:.1f}"
    )
    met = fraction >= 0.95 and share_429 < 0.05 and duplicates == 0 and not failed and not left
    print(f"target: {'met' if met else 'NOT met'}; worker log: {log.name}")


if __name__ == "__main__":
    main()
