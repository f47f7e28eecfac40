"""A loopback, OpenAI-compatible chat-completions server for tests, benchmarks and demos.

It answers `POST /v1/chat/completions` with deterministic journey-learning traces (to
step-judge requests, a JSON rating per step: devtools/simulated_judge.py; to solve
requests of rollout campaigns, a thought and a boxed answer: devtools/simulated_solve.py), paced
like a real model, behind a capacity limit and with injectable faults, so the expansion
pipeline (retries, timeouts, streaming) can run end to end without a real provider.
Standard library only, so it starts anywhere the test suite runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import threading
from collections import Counter
from typing import Any

from .simulated_judge import JUDGE_MODES
from .simulator_batches import BATCH_FAULT_KINDS, BatchStore
from .simulator_http import Server

DEFAULT_MODEL = "simulated-journey"
# "next N" faults are served in this order when several are armed at once.
FAULT_KINDS = ("auth", "rate_limit", "server_error", "hang", "drop", "truncate", "empty")
COUNTERS = ("requests", "peak_in_flight", "answered_429", "rejected_capacity", "completed")
COUNTERS += (
    "client_disconnects",
    "prompt_tokens",
    "completion_tokens",
    "batches",
    "batch_requests",
)


@dataclasses.dataclass
class SimConfig:
    model: str = DEFAULT_MODEL
    capacity: int = 32  # requests in flight before answering 429
    seconds_per_token: float = 3.5 / 1500  # ~3.5 s for a default-length completion
    time_to_first_token: float = 0.0
    target_tokens: int = 1500  # a "token" is a whitespace-separated word
    # Solve answers (devtools/simulated_solve.py) padded to about this many tokens; 0: the
    # short answer (about 40 words).
    solve_tokens: int = 0
    reasoning: bool = False  # also return the thought as `reasoning_content`
    chunk_interval: float = 0.05  # stream tokens in batches so pacing is not CPU bound
    hang_seconds: float = 600.0  # longer than any sane client timeout
    retry_after: int = 1
    api_key: str | None = None  # when set, any other bearer token gets 401
    no_usage: bool = False  # send no usage, as llama-cpp-python's server does in streams
    # The tokenize route served ("/extras/tokenize" as llama-cpp-python's server, "/tokenize"
    # as llama.cpp's), counting words as this simulator's tokens; "" serves none.
    tokenize_route: str = ""
    # A batch validates for a fifth of this, runs for all of it, finalizes for a fifth
    # (see simulator_batches, which serves /v1/files and /v1/batches).
    batch_seconds: float = 1.0
    # Step-judge answers (devtools/simulated_judge.py): a bad mode is served to the next
    # judge_answer_next judge requests (0: to every one), then valid answers again.
    judge_answer: str = "valid"
    judge_answer_next: int = 0


def _coerce(name: str, value: Any) -> Any:
    if name == "judge_answer" and value not in JUDGE_MODES:
        raise ValueError(f"judge_answer must be one of {', '.join(JUDGE_MODES)}")
    if name == "api_key":
        return None if value is None else str(value)
    kind = type(getattr(SimConfig, name))
    if kind is not str and (isinstance(value, str) or value is None):
        raise ValueError(f"{name} must be a {kind.__name__}")
    if kind in (int, float) and kind(value) < 0:
        raise ValueError(f"{name} must not be negative")
    return kind(value)


def _parse_fault(kind: str, spec: Any) -> dict[str, float] | None:
    if spec is None:
        return None
    kinds = FAULT_KINDS + BATCH_FAULT_KINDS
    if kind not in kinds or not isinstance(spec, dict) or set(spec) - {"next", "rate"}:
        raise ValueError(f"fault {kind!r}: use one of {kinds} with {{next: N, rate: p}}")
    nxt, rate = int(spec.get("next", 0)), float(spec.get("rate", 0.0))
    if nxt < 0 or not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault {kind!r}: need next >= 0 and 0 <= rate <= 1")
    return {"next": nxt, "rate": rate}


class SimulatedLLM:
    """`SimulatedLLM(**config).start()` or `with SimulatedLLM() as sim:`; use `sim.base_url`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, **config: Any
    ) -> None:
        self.host, self.port, self.verbose = host, port, verbose
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._initial = config
        self.batches = BatchStore(self)
        self.reset()

    def start(self) -> SimulatedLLM:
        self._stop.clear()
        self._server = Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop.set()  # wakes sleeping, streaming and hanging handlers
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections would otherwise hold their threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SimulatedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **kwargs: Any) -> dict[str, Any]:
        """Update settings; `faults={kind: {"next": N, "rate": p} | None}` (None disarms)."""
        unknown = set(kwargs) - {f.name for f in dataclasses.fields(SimConfig)} - {"faults"}
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        updates = {k: _coerce(k, v) for k, v in kwargs.items() if k != "faults"}
        faults = kwargs.get("faults") or {}
        if not isinstance(faults, dict):
            raise ValueError("faults must be an object")
        parsed = {kind: _parse_fault(kind, spec) for kind, spec in faults.items()}
        with self._lock:  # everything is validated first, so a bad request changes nothing
            self._config = dataclasses.replace(self._config, **updates)
            for kind, spec in parsed.items():
                if spec is None:
                    self._faults.pop(kind, None)
                else:
                    self._faults[kind] = spec
        return self.config()

    def config(self) -> dict[str, Any]:
        with self._lock:
            data = dataclasses.asdict(self._config)
            data["faults"] = {k: dict(v) for k, v in self._faults.items()}
        data["api_key"] = "***" if data["api_key"] else None
        return data

    def reset(self) -> None:
        """Back to the constructor's settings, with zeroed counters and reseeded fault draws."""
        with self._lock:
            self._config = SimConfig()
            self._faults: dict[str, dict[str, float]] = {}
            self._fault_rng = random.Random(0)  # noqa: S311 - reproducible fault draws
            self._counts: Counter[str] = Counter(peak_in_flight=self._in_flight)
            self._by_status: Counter[str] = Counter()
            self._injected: Counter[str] = Counter()
        self.batches.reset()
        self.configure(**self._initial)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **{name: self._counts[name] for name in COUNTERS},
                "in_flight": self._in_flight,
                "by_status": dict(self._by_status),
                "faults_injected": dict(self._injected),
            }

    # -- used by the request handler ---------------------------------------------------------
    def _begin(self) -> SimConfig:
        with self._lock:
            self._counts["requests"] += 1
            return dataclasses.replace(self._config)

    def _begin_batch(self) -> SimConfig:
        """The settings a batch's answers are made with (not counted as requests)."""
        with self._lock:
            return dataclasses.replace(self._config)

    def _pick_batch_fault(self) -> str | None:
        """The fault of a batch being created: an armed "next N" first, then a rate draw."""
        with self._lock:
            kind = next((k for k in BATCH_FAULT_KINDS if self._faults.get(k, {}).get("next")),
                        None)  # fmt: skip
            if kind is not None:
                self._faults[kind]["next"] -= 1
            else:
                rates = [(k, self._faults.get(k, {}).get("rate", 0.0)) for k in BATCH_FAULT_KINDS]
                kind = next((k for k, p in rates if p and self._fault_rng.random() < p), None)
            if kind is not None:
                self._injected[kind] += 1
            return kind

    def _admit(self) -> bool:
        with self._lock:
            if self._in_flight >= self._config.capacity:
                self._counts["rejected_capacity"] += 1
                return False
            self._in_flight += 1
            peak = max(self._counts["peak_in_flight"], self._in_flight)
            self._counts["peak_in_flight"] = peak
            return True

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _pick_fault(self) -> str | None:
        with self._lock:
            kind = next((k for k in FAULT_KINDS if self._faults.get(k, {}).get("next")), None)
            if kind is not None:
                self._faults[kind]["next"] -= 1
            else:  # seeded draws: a given request order always gets the same faults
                rates = [(k, self._faults.get(k, {}).get("rate", 0.0)) for k in FAULT_KINDS]
                kind = next((k for k, p in rates if p and self._fault_rng.random() < p), None)
            if kind is not None:
                self._injected[kind] += 1
            return kind

    def _judge_mode(self) -> str:
        """The judge answer for this request, counting down judge_answer_next."""
        with self._lock:
            mode, left = self._config.judge_answer, self._config.judge_answer_next
            if mode != "valid" and left:
                left -= 1
                replaced = {"judge_answer_next": left} | ({} if left else {"judge_answer": "valid"})
                self._config = dataclasses.replace(self._config, **replaced)
            return mode

    def _count(self, status: int | None = None, **amounts: int) -> None:
        with self._lock:
            self._counts.update(amounts)
            if status is not None:
                self._by_status[str(status)] += 1
                self._counts["answered_429"] += int(status == 429)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; False means the server is shutting down."""
        return not self._stop.wait(seconds) if seconds > 0 else not self._stop.is_set()
