"""Batches at scale: ``--jobs`` expansion jobs of one endpoint sent as one batch through the
real openai client to the simulated endpoint (in a process of its own), polled and ingested;
then the same number through a batch that expires half done and is salvaged.

Setup: a fresh PostgreSQL database (``bench_batches``, dropped first), the simulator started
with ``manage.py llm_simulator`` and its batches set to take ``--batch-seconds``.

Printed per run: jobs; seconds to build, upload and create the batch; seconds from the batch
ending to its last result ingested; CPU-seconds per job of the poller (this process, and
with its answer-check processes); database queries per job while ingesting; jobs succeeded;
results written or announced twice (must be 0); requests the simulator was sent in all its
batches (the jobs, plus the ones an expired batch did not answer).

    .venv/bin/python bench/batches.py [--jobs 2000] [--batch-seconds 3]
"""

import argparse
import json
import os
import socket
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from support import django_on_fresh_database, spawn, stop, submitted_annotation

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sim_post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def tree_cpu(root: int, skip: int) -> float:
    """CPU-seconds (user + system) of process ``root`` and every live descendant but
    ``skip`` (the simulator) and its own."""
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack += [child for child, parent in parents.items() if parent == pid and child != skip]
    return total


def run(label: str, *, annotation, endpoint, jobs: int, sim_base: str, fault: dict | None,
        sim_pid: int):  # fmt: skip
    from django.db import connection

    from expansion import services
    from expansion.batches import flow
    from expansion.models import LLMBatch, Trace
    from expansion.signals import trace_succeeded

    sim_post(sim_base, "/_sim/reset", {})
    sim_post(sim_base, "/_sim/config", {"batch_seconds": ARGS.batch_seconds,
                                        "target_tokens": 1500, "faults": fault or {}})  # fmt: skip
    Trace.objects.all().delete()
    LLMBatch.objects.all().delete()
    services.traces_request(annotation=annotation, endpoint=endpoint, samples=jobs,
                                     extra=True)  # fmt: skip
    announced = Counter()
    trace_succeeded.connect(lambda sender, trace_id, **kw: announced.update([trace_id]),
                            dispatch_uid="bench", weak=False)  # fmt: skip
    started = time.perf_counter()
    flow.batches_submit_queued()
    sent = time.perf_counter() - started
    measured = {"seconds": 0.0, "own": 0.0, "tree": 0.0, "queries": 0}
    ingest = flow.batch_ingest

    def counted(execute, sql, params, many, context):
        measured["queries"] += 1
        return execute(sql, params, many, context)

    def timed_ingest(batch):
        """The ingestion alone: not the simulator making the batch's answers when it ends."""
        own, tree = time.process_time(), tree_cpu(os.getpid(), sim_pid)
        began = time.perf_counter()
        with connection.execute_wrapper(counted):
            written = ingest(batch)
        measured["seconds"] += time.perf_counter() - began
        measured["own"] += time.process_time() - own
        measured["tree"] += tree_cpu(os.getpid(), sim_pid) - tree
        return written

    flow.batch_ingest = timed_ingest
    unfinished = Trace.objects.filter(status__in=["queued", "running"])
    while unfinished.exists():
        flow.batches_tick()
        time.sleep(0.2)
    flow.batch_ingest = ingest
    trace_succeeded.disconnect(dispatch_uid="bench")
    stats = json.loads(urllib.request.urlopen(sim_base + "/_sim/stats", timeout=10).read())
    succeeded = Trace.objects.filter(status="succeeded").count()
    twice = sum(1 for count in announced.values() if count > 1)
    cpu = f"{measured['own'] / jobs * 1000:10.1f} | {measured['tree'] / jobs * 1000:7.1f}"
    queries = measured["queries"] / jobs
    print(f"{label:>8} | {jobs:5d} | {sent:7.2f} | {measured['seconds']:9.2f} | {cpu} | "
          f"{queries:5.1f} | {succeeded:5d} | {twice:5d} | {stats['batches']:3d} | "
          f"{stats['batch_requests']:8d}")  # fmt: skip


def main() -> None:
    django_on_fresh_database("bench_batches", var_prefix="bench-batches-")
    port = free_port()
    sim = spawn([sys.executable, "manage.py", "llm_simulator", "--port", str(port), "--quiet"])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/_sim/stats", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the simulator did not start")
                time.sleep(0.2)
        annotation, endpoint = submitted_annotation(base_url=base + "/v1", capacity=32,
                                                    timeout_seconds=600)  # fmt: skip
        endpoint.use_batches = True
        endpoint.price_input_per_million, endpoint.price_output_per_million = 1, 2
        endpoint.save()
        print(
            "     run |  jobs | send, s | ingest, s | CPU ms/job | +checks | q/job | "
            "succ. | twice | bat | requests"
        )
        common = {"annotation": annotation, "endpoint": endpoint, "jobs": ARGS.jobs,
                  "sim_base": base, "sim_pid": sim.pid}  # fmt: skip
        run("complete", fault=None, **common)
        run("expire", fault={"batch_expire": {"next": 1}}, **common)
    finally:
        stop(sim)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--batch-seconds", type=float, default=3.0)
    ARGS = parser.parse_args()
    main()
