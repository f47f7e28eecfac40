"""Job-engine throughput: N jobs of one kind through one worker host against a limited endpoint.

Creates a fresh PostgreSQL database (``--database``, default ``bench_expansion``, dropped
first), flushes the Redis database of ``--redis-url`` (default db 12; broker and shared
limiter), then, in this process, migrates and seeds one submitted annotation, an endpoint
(``max_in_flight`` = capacity) and ``--jobs`` queued jobs of ``--kind`` through the
product's services, which send their messages on commit (``bench/job_kinds.py``):

- ``expansion`` (the default): traces of the annotation (``traces_request(extra=True)``);
- ``rollout``: one campaign (``campaign_create``) over arithmetic problems ("What is
  12+7?"), as many samples each as divide N (at most 16: 300 jobs are 20 problems x 15);
  the simulator pads its solve answers to ``--tokens`` (``--solve-tokens``), so a sample
  costs what a trace does; each must end verified with the verdict the simulator drew;
- ``judge``: N succeeded traces whose thought is the simulator's ``--tokens``-token trace of
  the annotation (one text for all: 54 steps at 1,500 tokens), each sent to the judge
  (``judge_request``: split into steps, then queued). The judge's answer is one short JSON
  rating per step (813 tokens for 54 steps), so the simulator's seconds per token are set
  for it to take ``--seconds-per-answer``; each must end with one rating per step.

Then it starts ``manage.py llm_simulator`` on a free loopback port (``--capacity`` requests
in flight, else 429; an answer's tokens in ``--seconds-per-answer``) and points the endpoint
at it. Only then are the worker processes started (Celery threads pool, ``--concurrency``
threads each, by default the capacity; one process per CPU, as the README advises;
production settings, DEBUG off), so the queue is full.

Throughput = succeeded / (last ``finished_at`` - first ``started_at``, from the database);
worker start-up is printed apart. The limit is capacity / latency per answer, the latency
from the simulator's settings (tokens x seconds per token, no time to first token). N jobs
in waves of ``capacity`` cannot beat N / (capacity x ceil(N / capacity)) of it: printed as
the bound. Also printed: the steady-state rate (the whole waves between the first, a cold
start, and the last, partial one), the simulator's mean in-flight count while every slot had
work, CPU seconds used (the workers', the simulator's during their run, and how busy the
host's CPUs were meanwhile, all processes together), and, for reference, the fraction a
plain asyncio client with a semaphore of the capacity reaches against the same simulator
with the kind's own requests (run first, before the workers, with the SDK's resources
loaded before its clock starts, as a worker loads them before its first job; the
simulator's counters are reset after it). 429 share and completions come from
``/_sim/stats``; duplicates = completions - succeeded jobs
(an LLM call made twice). Peak memory = summed VmRSS of the workers' process groups,
sampled every 0.2 s; database connections = the most the workers held at once
(``pg_stat_activity``, by the workers' ``application_name``), sampled with it. CPU per job =
the workers' CPU seconds (their answer-check processes included: a sample's verification
too) per finished job, in all and after start-up (from the first claim), beside the
reference client's CPU seconds per answer; stalled = jobs still queued or running at the
end. Figures are printed, never asserted.
Target: >= 0.95 of the limit and within 3 % of the reference, < 5 % of requests answered
429, no duplicate, no stalled job, worker CPU per job within 2x of the reference's, and the
kind's jobs ended as they must (samples verified, judge ratings stored).

    .venv/bin/python bench/expansion.py [--jobs 500] [--processes CPUs] [--concurrency C]
    .venv/bin/python bench/expansion.py --capacity 256 --seconds-per-answer 32 --jobs 2000
    .venv/bin/python bench/expansion.py --kind rollout|judge --jobs 300

Measured on 2 quiet cores, one run after the other (README, Benchmarks): of the limit 0.925
at 32 in flight, 0.944 at 64, 0.929 at 128, 0.887 at 256 (the asyncio reference 0.965,
0.970, 0.937, 0.632); 0 % 429, no duplicate or stalled job, 8 connections, 810-994 MB, CPU
per job after start-up 65.6 to 177.4 ms (0.91x to 1.23x the reference's); at 256 the
host's CPUs were 92 % busy.
"""

import argparse
import json
import math
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import redis
from support import ROOT, fresh_database, simulator, spawn, stop, submitted_annotation

KINDS = ("expansion", "rollout", "judge")  # bench/job_kinds.py seeds each
UNSET_URL = "http://127.0.0.1:9/v1"  # the endpoint's address until the simulator listens

WORKER_APP = "bench-expansion-worker"  # the workers' application_name, to count connections


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


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host since boot, from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def seed(args):
    """One submitted annotation, an endpoint for the simulator, N queued jobs of the kind:
    (the kind, the endpoint)."""
    import django

    sys.path.insert(0, str(ROOT))  # config, annotator, expansion
    django.setup()
    from job_kinds import KINDS as SEEDS

    submitted, endpoint = submitted_annotation(
        base_url=UNSET_URL, capacity=args.capacity, timeout_seconds=120
    )
    return SEEDS[args.kind](args, submitted, endpoint), endpoint


def reference_run(base_url: str, args, refused: list, request) -> tuple[float, float]:
    """The same N answers fetched by a plain asyncio client, ``capacity`` at a time, the
    i-th request ``request(i)`` (the kind's messages): (seconds, CPU seconds).

    No database, no queue, no shared limiter: how close this simulator lets any client come
    to its limit.
    """
    import asyncio
    import logging

    from openai import AsyncOpenAI, RateLimitError

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    requests = [request(i) for i in range(args.jobs)]  # built before the clock starts

    async def run() -> float:
        client = AsyncOpenAI(base_url=base_url, api_key="sim", max_retries=0, timeout=120)
        gate = asyncio.Semaphore(args.capacity)

        async def one(i: int) -> None:
            async with gate:
                while True:
                    try:
                        stream = await client.chat.completions.create(
                            model="simulated-journey", stream=True, **requests[i]
                        )
                    except RateLimitError:
                        refused.append(i)
                        await asyncio.sleep(0.05)
                        continue
                    async for _ in stream:
                        pass
                    return

        client.chat.completions  # noqa: B018 - the SDK's lazy imports, as the workers warm up
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(args.jobs)))
        return time.perf_counter() - started

    cpu = time.process_time()
    seconds = asyncio.run(run())
    return seconds, time.process_time() - cpu


def worker_connections(cursor, database: str) -> int:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [database, WORKER_APP],
    )
    return cursor.fetchone()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="expansion",
                        help="the jobs: traces, rollout samples or judge jobs")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=32, help="requests in flight")
    parser.add_argument("--seconds-per-answer", type=float, default=3.5)
    parser.add_argument("--tokens", type=int, default=1500,
                        help="tokens per answer (judge: of the thought judged)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, help="threads per process (the capacity)")
    parser.add_argument("--processes", type=int, default=os.cpu_count(),
                        help="worker processes (one host)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for jobs")
    parser.add_argument("--no-reference", action="store_true", help="skip the asyncio reference")
    parser.add_argument("--database", default="bench_expansion", help="dropped and created")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="flushed")
    parser.add_argument("--pool", type=int, help="DB_POOL_MAX_SIZE of each worker process")
    args = parser.parse_args()
    args.concurrency = args.concurrency or args.capacity

    var_dir = tempfile.mkdtemp(prefix="bench-expansion-")
    load_before = os.getloadavg()
    database_url = fresh_database(args.database)
    env = {"DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "DEBUG": "0",
           "VAR_DIR": var_dir}  # fmt: skip
    env["SECRET_KEY"] = secrets.token_urlsafe(40)  # production settings, as a worker runs
    env["PSEUDONYM_KEY"] = secrets.token_urlsafe(32)
    env.update(DJANGO_SETTINGS_MODULE="config.settings", EXPANSION_SAMPLES="0")
    os.environ.update(env)
    redis.Redis.from_url(args.redis_url).flushdb()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    sim, workers = None, []
    log = open(Path(var_dir) / "worker.log", "w")  # noqa: SIM115 (closed in finally)
    try:
        kind, endpoint = seed(args)
        tokens = kind.tokens  # a judge answer is as long as its ratings, not --tokens
        seconds_per_token = args.seconds_per_answer / tokens
        sim, base_url = simulator(
            capacity=args.capacity,
            tokens=args.tokens,
            seconds_per_token=seconds_per_token,
            extra=kind.simulator,
        )
        type(endpoint).objects.filter(pk=endpoint.pk).update(base_url=base_url)
        refused = []  # the reference's requests answered 429
        reference, reference_cpu = (
            (None, None)
            if args.no_reference
            else reference_run(base_url, args, refused, kind.request)
        )
        reset = urllib.request.Request(base_url.removesuffix("/v1") + "/_sim/reset", b"{}")
        urllib.request.urlopen(reset, timeout=5).close()  # the counters start from zero

        from django.db.models import Avg, Count, Max, Min, Sum

        from expansion.models import Trace  # its statuses are every kind's

        def sim_stats() -> dict:
            stats_url = base_url.removesuffix("/v1") + "/_sim/stats"
            with urllib.request.urlopen(stats_url, timeout=5) as response:
                return json.load(response)

        jobs = kind.jobs
        print(
            f"{jobs.count()} {args.kind} jobs queued ({kind.note}); simulator {base_url}: "
            f"capacity {args.capacity}, {tokens} tokens x {seconds_per_token * 1e3:.4f} ms; one "
            f"worker host ({os.cpu_count()} CPUs): {args.processes} x threads pool -c "
            f"{args.concurrency}"
        )
        celery = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "expansion"]
        celery += ["-P", "threads", "-c", str(args.concurrency), "--loglevel=WARNING"]
        celery += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        worker_env = {"DATABASE_URL": f"{database_url}?application_name={WORKER_APP}"}
        if args.pool is not None:
            worker_env["DB_POOL_MAX_SIZE"] = str(args.pool)
        spawned, sim_cpu_before, host_before = time.time(), group_stat(sim.pid)[1], host_cpu()
        for i in range(args.processes):
            workers.append(spawn([*celery, "-n", f"bench{i}@%h"], env=worker_env, stdout=log,
                                 stderr=log))  # fmt: skip
        peak = {"rss": 0, "cpu": 0.0, "cpu_at_start": None, "connections": 0, "stop": False}
        started = jobs.exclude(status=Trace.Status.QUEUED)

        def sample() -> None:
            with psycopg.connect(database_url, autocommit=True) as db:
                cursor = db.cursor()
                while not peak["stop"]:
                    groups = [group_stat(worker.pid) for worker in workers]
                    peak["rss"] = max(peak["rss"], sum(rss for rss, _ in groups))
                    peak["cpu"] = sum(cpu for _, cpu in groups)
                    if peak["cpu_at_start"] is None and started.exists():
                        peak["cpu_at_start"] = peak["cpu"]
                    held = worker_connections(cursor, args.database)
                    peak["connections"] = max(peak["connections"], held)
                    time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline, next_print = time.monotonic() + args.timeout, time.monotonic() + 10
        unfinished = jobs.filter(status__in=[Trace.Status.QUEUED, Trace.Status.RUNNING])
        busy = []  # requests in flight at the simulator while there was work for every slot
        while (left := unfinished.count()) and time.monotonic() < deadline:
            if any(w.poll() is not None for w in workers):
                sys.exit(f"a worker exited; see {log.name}")
            stats = sim_stats()
            if left > args.capacity and (busy or stats["in_flight"]):
                busy.append(stats["in_flight"])
            if time.monotonic() > next_print:
                next_print, done, flying = next_print + 10, args.jobs - left, stats["in_flight"]
                print(f"  {time.time() - spawned:4.0f} s: {done} finished, {flying} in flight")
            time.sleep(0.5)
        peak["stop"] = True
        sampler.join()
        sim_cpu = group_stat(sim.pid)[1] - sim_cpu_before  # the workers' run only
        host_busy, host_total = (
            now - then for now, then in zip(host_cpu(), host_before, strict=True)
        )
        stats = sim_stats()
    finally:
        for worker in workers:
            stop(worker)
        stop(sim)
        log.close()

    agg = jobs.aggregate(
        first=Min("started_at"), last=Max("finished_at"), latency=Avg("latency_ms"),
        tokens=Avg("completion_tokens"), attempts=Sum("attempts"),
        keys=Count("idempotency_key", distinct=True),
    )  # fmt: skip
    by_status = dict(jobs.values_list("status").annotate(n=Count("pk")).order_by())
    succeeded, failed = by_status.get("succeeded", 0), by_status.get("failed", 0)
    if not agg["first"] or not agg["last"] or not agg["latency"]:
        sys.exit(f"no job finished: {by_status}; see {log.name}")
    wall = (agg["last"] - agg["first"]).total_seconds()
    latency = tokens * seconds_per_token  # time to first token is 0 in the simulator
    limit = args.capacity / latency
    throughput = succeeded / wall
    fraction = throughput / limit
    finishes = sorted(jobs.filter(status="succeeded").values_list("finished_at", flat=True))
    waves = math.ceil(args.jobs / args.capacity)
    # Steady state: whole waves only, from the end of the first (cold start) to the end of the
    # last full one, so that bursts of completions at wave ends cannot bias the rate.
    lo, hi = args.capacity - 1, args.capacity * (waves - 1) - 1
    steady = math.nan
    if lo < hi < len(finishes):
        steady = (hi - lo) / (finishes[hi] - finishes[lo]).total_seconds()
    bound = args.jobs / waves / args.capacity
    share_429 = stats["answered_429"] / max(1, stats["requests"])
    duplicates = stats["completed"] - succeeded
    jobs_done = succeeded + failed
    cpu_per_job = peak["cpu"] / max(1, jobs_done)
    cpu_after_start = (peak["cpu"] - (peak["cpu_at_start"] or 0)) / max(1, jobs_done)
    mean_busy = sum(busy) / max(1, len(busy))
    if reference is None:
        reference_line, ratio, cpu_ratio = "skipped", math.nan, math.nan
    else:
        reference_fraction = args.jobs / reference / limit
        ratio = fraction / reference_fraction
        reference_per_job = reference_cpu / args.jobs
        cpu_ratio = cpu_after_start / reference_per_job
        reference_line = (
            f"{reference_fraction:.3f} of the limit ({reference:.2f} s, {len(refused)} "
            f"answered 429); the workers reached {ratio:.3f} of it (target >= 0.97); its CPU: "
            f"{reference_cpu:.1f} s = {reference_per_job * 1e3:.1f} ms per answer"
        )
    ended, ended_well = kind.ended()
    met = (
        fraction >= 0.95 and share_429 < 0.05 and duplicates == 0 and not failed and not left
        and not ratio < 0.97 and not cpu_ratio > 2 and ended_well
    )  # fmt: skip
    load_after = os.getloadavg()
    report = [
        f"\n{args.kind} jobs: {args.jobs}; rows {jobs.count()}, unique idempotency keys "
        f"{agg['keys']}",
        f"status: {by_status}; unfinished after the timeout: {left}",
        *([ended] if ended else []),
        f"worker start -> first job claimed: {agg['first'].timestamp() - spawned:.1f} s; "
        f"first claimed -> last finished: {wall:.2f} s",
        f"answer latency: configured {latency:.3f} s, measured mean {agg['latency'] / 1e3:.3f} s "
        f"({agg['tokens']:.0f} completion tokens); attempts {agg['attempts']}",
        f"throughput: {throughput:.3f} answers/s; endpoint limit {args.capacity} / "
        f"{latency:.2f} s = {limit:.3f} answers/s",
        f"throughput fraction of the limit: {fraction:.3f}  (target >= 0.95; bound for "
        f"{args.jobs} jobs in {waves} waves of {args.capacity}: {bound:.3f})",
        f"steady state (waves 2..{waves - 1}): {steady:.3f} answers/s = "
        f"{steady / limit:.3f} of the limit; mean in flight at the simulator while every slot "
        f"had work: {mean_busy:.1f} of {args.capacity}",
        f"simulator: {stats['requests']} requests, {stats['completed']} completed, "
        f"{stats['answered_429']} answered 429 = {share_429:.2%} (target < 5%), "
        f"peak in flight {stats['peak_in_flight']}, client disconnects "
        f"{stats['client_disconnects']}",
        f"duplicates: {duplicates} (must be 0); failed: {failed}; stalled (queued or "
        f"running at the end): {left} (must be 0)",
        "reference, a plain asyncio client with a semaphore of the capacity on the same "
        f"simulator: {reference_line}",
        f"peak worker memory: {peak['rss'] / 1024:.1f} MB RSS; database connections held by "
        f"the workers: at most {peak['connections']} (pool of "
        f"{args.pool if args.pool is not None else 'DB_POOL_MAX_SIZE'} per process, "
        f"{args.processes} processes, {args.processes * args.concurrency} threads)",
        f"CPU seconds: workers {peak['cpu']:.1f} ({cpu_per_job * 1e3:.1f} ms per job; after "
        f"start-up {cpu_after_start * 1e3:.1f} ms per job = {cpu_ratio:.2f} x the reference's, "
        f"target <= 2), simulator {sim_cpu:.1f} during the workers' run; the host's CPUs "
        f"{host_busy / host_total:.0%} busy from the workers' start ({host_busy:.0f} of "
        f"{host_total:.0f} CPU-seconds: workers, simulator, PostgreSQL, Redis, this script)",
        "load average (1, 5, 15 min): before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f} "
        "on {} CPUs".format(*load_before, *load_after, os.cpu_count()),
        f"target: {'met' if met else 'NOT met'}; worker log: {log.name}",
    ]
    print("\n".join(report))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the subprocesses were stopped on the way out
        sys.exit("interrupted")
