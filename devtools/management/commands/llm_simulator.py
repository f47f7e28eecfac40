"""Run the simulated OpenAI-compatible LLM server in the foreground (offline demos, benchmarks)."""

import time

from django.core.management.base import BaseCommand

from devtools.simulator import SimConfig, SimulatedLLM


class Command(BaseCommand):
    help = "Serve a simulated OpenAI-compatible chat-completions API until Ctrl-C."

    def add_arguments(self, parser):
        defaults = SimConfig()
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8808, help="0 picks a free port.")
        parser.add_argument("--capacity", type=int, default=defaults.capacity)
        parser.add_argument("--seconds-per-token", type=float, default=defaults.seconds_per_token)
        parser.add_argument("--target-tokens", type=int, default=defaults.target_tokens)
        parser.add_argument(
            "--solve-tokens", type=int, default=defaults.solve_tokens,
            help="Pad solve answers (rollout samples) to about this many tokens; 0: short.",
        )  # fmt: skip
        parser.add_argument(
            "--time-to-first-token", type=float, default=defaults.time_to_first_token
        )
        parser.add_argument("--model", default=defaults.model)
        parser.add_argument(
            "--reasoning", action="store_true", help="Also return reasoning_content."
        )
        parser.add_argument(
            "--batch-seconds", type=float, default=defaults.batch_seconds,
            help="How long a batch (/v1/batches) runs; validating and finalizing take a fifth.",
        )  # fmt: skip
        parser.add_argument("--quiet", action="store_true", help="Do not log each request.")

    def handle(self, *args, **options):
        sim = SimulatedLLM(
            options["host"],
            options["port"],
            verbose=not options["quiet"],
            capacity=options["capacity"],
            seconds_per_token=options["seconds_per_token"],
            target_tokens=options["target_tokens"],
            solve_tokens=options["solve_tokens"],
            time_to_first_token=options["time_to_first_token"],
            model=options["model"],
            reasoning=options["reasoning"],
            batch_seconds=options["batch_seconds"],
        ).start()
        self.stdout.write(self.style.SUCCESS(f"Simulated LLM at {sim.base_url}"))
        self.stdout.write("Use it as LLM_BASE_URL (any API key works). Ctrl-C stops.")
        self.stdout.flush()
        try:
            while True:  # time.sleep is interruptible by Ctrl-C, unlike some blocking waits
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            sim.stop()
