import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotator.accounts import user_create_or_update
from annotator.problem_import import problems_import
from annotator.roles import Role

DEMO_USERS = {"annotator": Role.ANNOTATOR, "reviewer": Role.REVIEWER, "admin": Role.ADMIN}
SAMPLE = settings.BASE_DIR / "data" / "math500.jsonl"


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
        self.stdout.write("Demo users (username / password):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {role.value:<10} {username} / {passwords[username]}")
        if not setup_only:
            self._serve(port)

    def _demo_passwords(self) -> dict[str, str]:
        """Random passwords, made once and kept under var/ so re-runs print the same ones."""
        path = settings.VAR_DIR / "demo-users.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        for username in DEMO_USERS:
            stored.setdefault(username, secrets.token_urlsafe(9))
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
        return stored

    def _serve(self, port: int) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # One worker for every queue, with threads (expansion is I/O-bound) and the periodic
        # tasks embedded (-B), which a single-host demo can do.
        celery = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "celery,expansion",
            "-P", "threads", "-c", "16", "-B", "--loglevel=INFO",
            "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
        ]  # fmt: skip
        commands = [[*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], celery]
        if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
            simulator_port = settings.LLM_SIMULATOR_URL.rsplit(":", 1)[-1].split("/")[0]
            commands.append([*manage, "llm_simulator", "--port", simulator_port, "--quiet"])
            self.stdout.write(
                "No LLM_BASE_URL/LLM_MODEL set: expansions use the simulated endpoint at "
                f"{settings.LLM_SIMULATOR_URL} and are marked as simulated."
            )
        local_server = os.environ.get("DEMO_LLM_SERVER", "")
        if local_server:  # make demo LLM=local: the llama.cpp server LLM_BASE_URL points at
            commands.append(shlex.split(local_server))
            self.stdout.write(
                f"Expansions use the local model {settings.LLM_MODEL} at {settings.LLM_BASE_URL}."
            )
        # Argument lists built from our own interpreter path and the operator's environment:
        # no shell, no user input.
        processes = [subprocess.Popen(command, cwd=settings.BASE_DIR) for command in commands]  # noqa: S603
        self.stdout.write(self.style.SUCCESS(f"\nOpen http://127.0.0.1:{port}/  (Ctrl-C stops)\n"))
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly when killed
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            self.stderr.write("A process stopped; shutting the other down.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
