import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotator.accounts import user_create_or_update
from annotator.benchmarks import benchmark_add
from annotator.models import Benchmark
from annotator.problem_import import problems_import
from annotator.roles import Role

DEMO_USERS = {"annotator": Role.ANNOTATOR, "reviewer": Role.REVIEWER, "admin": Role.ADMIN}
SAMPLE = settings.BASE_DIR / "data" / "math500.jsonl"
READY_TIMEOUT = 120  # seconds before saying what is still starting (then keep waiting)


def llama_server_environment(environ) -> dict[str, str]:
    """``environ`` for llama.cpp's server, which takes HOST and PORT from its environment
    over its own --host and --port: the demo's PORT (the web's) would put it on that port."""
    return {key: value for key, value in environ.items() if key not in {"HOST", "PORT"}}


class Command(BaseCommand):
    help = (
        "Set up and run the platform locally: migrate, create one demo user per role, import "
        "the MATH-500 sample, then run the web server and a Celery worker until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--setup-only", action="store_true", help="Prepare, do not serve.")

    def handle(self, *args, port, setup_only, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        passwords = self._demo_passwords()
        for username, role in DEMO_USERS.items():
            user_create_or_update(username=username, role=role, password=passwords[username])
        report = problems_import(path=SAMPLE, source="math500")
        self.stdout.write(
            f"Sample problems: {report.created} created, {report.unchanged} already there."
        )
        self._register_math500()
        if setup_only:
            self._print_users(passwords)
        else:
            self._serve(port, passwords)

    def _register_math500(self) -> None:
        """The sample is MATH-500's test split: registered as the benchmark math500 so that
        the problems are marked and exports leave their traces out unless it is allowed.
        The demo does it, not a migration, because a migration would register it on every
        database, whether or not its team uses the shipped file."""
        if not Benchmark.objects.filter(name="math500").exists():
            benchmark_add(path=SAMPLE, name="math500")
        self.stdout.write(
            "The sample problems are MATH-500 itself, registered as the benchmark math500: "
            "exports leave their traces out unless math500 is allowed "
            "(--allow-contaminated math500, or Allow benchmarks on the export page)."
        )

    def _print_users(self, passwords: dict[str, str]) -> None:
        self.stdout.write("Demo users (username / password):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {role.value:<10} {username} / {passwords[username]}")

    def _demo_passwords(self) -> dict[str, str]:
        """Random passwords, made once and kept under var/ so re-runs print the same ones."""
        path = settings.VAR_DIR / "demo-users.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        for username in DEMO_USERS:
            stored.setdefault(username, secrets.token_urlsafe(9))
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
        return stored

    def _serve(self, port: int, passwords: dict[str, str]) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # One worker for every queue, with threads (expansion is I/O-bound) and the periodic
        # tasks embedded (-B), which a single-host demo can do.
        celery = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "celery,expansion",
            "-P", "threads", "-c", "16", "-B", "--loglevel=INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ]  # fmt: skip
        commands = {
            "web": [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": celery,
        }
        probes = {"web": f"http://127.0.0.1:{port}/accounts/login/"}
        if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
            simulator_port = settings.LLM_SIMULATOR_URL.rsplit(":", 1)[-1].split("/")[0]
            commands["simulator"] = [*manage, "llm_simulator", "--port", simulator_port, "--quiet"]
            probes["simulator"] = settings.LLM_SIMULATOR_URL.rstrip("/") + "/models"
            self.stdout.write(
                "No LLM_BASE_URL/LLM_MODEL set: expansions use the simulated endpoint at "
                f"{settings.LLM_SIMULATOR_URL} and are marked as simulated."
            )
        local_server = os.environ.get("DEMO_LLM_SERVER", "")
        if local_server:  # make demo LLM=local: the llama.cpp server LLM_BASE_URL points at
            commands["llm"] = shlex.split(local_server)
            probes["llm"] = settings.LLM_BASE_URL.rstrip("/") + "/models"
            self.stdout.write(
                f"Expansions use the local model {settings.LLM_MODEL} at {settings.LLM_BASE_URL}."
            )
        # Their banners and request logs go to files, so that what the terminal shows last is
        # the address and the passwords.
        logs = {name: settings.VAR_DIR / f"demo-{name}.log" for name in commands}
        self.stdout.write(f"Starting {', '.join(commands)}; logs in {_shown(*logs.values())}")
        self.stdout.flush()
        processes = {}
        for name, command in commands.items():
            with logs[name].open("w") as log:
                # Argument lists from our own interpreter path and the operator's environment
                # (DEMO_LLM_SERVER): no shell, no user input.
                processes[name] = subprocess.Popen(  # noqa: S603
                    command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                    env=llama_server_environment(os.environ) if name == "llm" else None,
                )  # fmt: skip
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly when killed
        try:
            worker = self._wait_until_ready(processes, probes, logs)
            if worker:
                self.stdout.write(f"Worker {worker} ready.")
                self.stdout.write("")
                self._print_users(passwords)
                self.stdout.write(
                    self.style.SUCCESS(f"\nOpen http://127.0.0.1:{port}/  (Ctrl-C stops)")
                )
                self.stdout.flush()
                while all(process.poll() is None for process in processes.values()):
                    time.sleep(0.5)
            stopped = [name for name, process in processes.items() if process.poll() is not None]
            self.stderr.write(f"{', '.join(stopped)} stopped; shutting the others down.")
            for name in stopped:
                self.stderr.write(f"Last lines of {_shown(logs[name])}:\n{_tail(logs[name])}")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _wait_until_ready(self, processes, probes, logs) -> str:
        """The worker's name once every process answers; "" if one of them stopped first."""
        started, worker, waiting = time.monotonic(), "", set(probes)
        while waiting or not worker:
            if any(process.poll() is not None for process in processes.values()):
                return ""
            waiting = {name for name in waiting if not _answers(probes[name])}
            worker = worker or _worker_ready(logs["worker"])
            if time.monotonic() - started > READY_TIMEOUT:
                self.stderr.write(
                    f"Still waiting for {', '.join([*waiting, *([] if worker else ['worker'])])}"
                    f" after {READY_TIMEOUT} s; their logs: {_shown(*logs.values())}"
                )
                started = time.monotonic()
            time.sleep(0.3)
        return worker


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback address
            return True
    except urllib.error.HTTPError:
        return True  # it answers; what it says is the page's business
    except OSError:
        return False


def _worker_ready(log: Path) -> str:
    """Celery logs "celery@host ready." once it consumes; its name, or "" before that."""
    match = re.search(r"(celery@\S+) ready\.", log.read_text(errors="replace"))
    return match[1] if match else ""


def _shown(*paths: Path) -> str:
    return ", ".join(
        str(p.relative_to(settings.BASE_DIR) if p.is_relative_to(settings.BASE_DIR) else p)
        for p in paths
    )


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
