"""What reading a streamed answer costs a worker: CPU per chunk, with nothing else to do.

Starts ``manage.py llm_simulator`` (``--threads`` requests in flight, 1,500-token answers in
``--seconds-per-answer``), then ``--threads`` threads of this process each stream one answer
the way a job does (the SDK's ``with_streaming_response`` and ``expansion.llm._sse_chunks``,
no database, no limiter) and prints this process's CPU seconds per chunk received. It is the
floor under a worker's CPU per job: 256 answers of 32 s in flight are about 6,000 chunks a
second to read, whatever else the jobs do.

    .venv/bin/python bench/stream_reading.py --threads 128 --seconds-per-answer 32
"""

import argparse
import logging
import os
import sys
import threading
import time

from support import ROOT, simulator, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=128)
    parser.add_argument("--seconds-per-answer", type=float, default=32)
    parser.add_argument("--tokens", type=int, default=1500)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import openai

    from expansion import llm

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    sim, base_url = simulator(
        capacity=args.threads,
        tokens=args.tokens,
        seconds_per_token=args.seconds_per_answer / args.tokens,
    )
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sim", max_retries=0, timeout=300)
        client.chat.completions  # noqa: B018 - the SDK's lazy imports, before the clock starts
        counts: list[int] = []

        def read(sample: int) -> None:
            with client.chat.completions.with_streaming_response.create(
                model="simulated-journey", stream=True,
                messages=[{"role": "user", "content": "Problem: what is 12+7?"}],
                extra_headers={"X-Journey-Sample": str(sample)},
            ) as response:  # fmt: skip
                counts.append(sum(1 for _ in llm._sse_chunks(response)))

        threads = [threading.Thread(target=read, args=(i,)) for i in range(args.threads)]
        cpu, started = time.process_time(), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu, wall = time.process_time() - cpu, time.monotonic() - started
    finally:
        stop(sim)
    chunks = sum(counts)
    print(
        f"{len(counts)} answers of {args.tokens} tokens in {args.seconds_per_answer} s, "
        f"{args.threads} threads: {wall:.1f} s, {chunks} chunks, {cpu:.1f} CPU-seconds = "
        f"{cpu / chunks * 1e6:.0f} us per chunk ({cpu / len(counts) * 1e3:.1f} ms per answer)"
    )


if __name__ == "__main__":
    main()
