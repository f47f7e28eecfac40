"""A loopback, OpenAI-compatible chat-completions server for tests, benchmarks and demos.

It answers `POST /v1/chat/completions` with deterministic journey-learning traces, paced
like a real model, behind a capacity limit and with injectable faults, so the expansion
pipeline (retries, timeouts, streaming) can run end to end without a real provider.
Standard library only, so it starts anywhere the test suite runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import re
import select
import socket
import socketserver
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "simulated-journey"
# "next N" faults are served in this order when several are armed at once.
FAULT_KINDS = ("auth", "rate_limit", "server_error", "hang", "drop", "truncate", "empty")
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
COUNTERS = ("requests", "peak_in_flight", "answered_429", "rejected_capacity", "completed")
COUNTERS += ("client_disconnects", "prompt_tokens", "completion_tokens")

_FINAL_RE = re.compile(r"^\s*final answer\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STEP_RE = re.compile(r"^\s*step\s*\d+\b[^:]*:\s*(.*)$", re.IGNORECASE)
_MARKERS = ("Hmm,", "Wait,", "Let me check:", "Alternatively,", "Therefore,")
_OPENERS = (*_MARKERS, "So", "Now", "Next,", "Then")
# Filler vocabulary for the reflective sentences that pad the thought to length.
_SUBJECTS = ("the previous step", "this expression", "the constraint", "the boundary case")
_OBJECTS = ("the intermediate result", "the substitution", "each sign", "the running count")
_VERBS = ("does not quite match", "needs another look at", "simplifies with", "is consistent with")
_TAILS = ("before moving on.", "so I will recompute it.", "and that seems right.", "term by term.")


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _message_text(message: Any) -> str:
    """Content as text; the SDK may send a list of typed parts instead of a string."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _pieces(text: str) -> list[str]:
    """Word-sized pieces (word + trailing whitespace); they concatenate back to `text`."""
    lead = text[: len(text) - len(text.lstrip())]
    return ([lead] if lead else []) + re.findall(r"\S+\s*", text)


def _step_snippets(text: str, n_words: int = 8) -> list[str]:
    """A few words of every "Step k (...):" line, so coverage checks downstream can match."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    steps = [m.group(1) for line in lines if (m := _STEP_RE.match(line)) and m.group(1).strip()]
    if not steps:  # No labelled steps: any non-answer line will do, bounded to stay concise.
        steps = [line for line in lines if not _FINAL_RE.match(line)][:12]
    return [" ".join(step.split()[:n_words]) for step in steps]


def build_trace(messages: list[Any], sample: Any, target_tokens: int) -> tuple[str, str]:
    """Return (content, thought): a deterministic journey-learning trace for the request."""
    key = json.dumps([messages, sample], sort_keys=True, default=str).encode()
    rng = random.Random(hashlib.sha256(key).digest())  # noqa: S311 - reproducible text only
    user = next((_message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    answer = (_FINAL_RE.findall(user) or ["0"])[-1]
    paragraphs = ["Let me work through this problem carefully, one step at a time."]
    for k, snippet in enumerate(_step_snippets(user), 1):
        paragraphs.append(f"Looking at step {k}: {snippet} ... Hmm, let me check that first.")
    solution = (
        "After weighing the attempts above, the consistent line of reasoning is clear."
        f"\n\nThe final answer is \\boxed{{{answer}}}"
    )
    used = sum(map(_words, paragraphs)) + _words(solution) + 4  # + the four tags
    sentences: list[str] = []
    while used < target_tokens:  # every marker appears once before random openers take over
        opener = _MARKERS[len(sentences)] if len(sentences) < len(_MARKERS) else None
        words = [opener or rng.choice(_OPENERS)]
        words += [rng.choice(group) for group in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS)]
        sentences.append(" ".join(words))
        used += _words(sentences[-1])
    if used > target_tokens and sentences:  # trim the last sentence: exactly the target
        last = sentences[-1].split()
        sentences[-1] = " ".join(last[: max(1, len(last) - (used - target_tokens))])
    paragraphs += [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    thought = "\n\n".join(paragraphs)
    content = (
        f"<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
        f"<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>"
    )
    return content, thought


@dataclasses.dataclass
class SimConfig:
    model: str = DEFAULT_MODEL
    capacity: int = 32  # requests in flight before answering 429
    seconds_per_token: float = 3.5 / 1500  # ~3.5 s for a default-length completion
    time_to_first_token: float = 0.0
    target_tokens: int = 1500  # a "token" is a whitespace-separated word
    reasoning: bool = False  # also return the thought as `reasoning_content`
    chunk_interval: float = 0.05  # stream tokens in batches so pacing is not CPU bound
    hang_seconds: float = 600.0  # longer than any sane client timeout
    retry_after: int = 1
    api_key: str | None = None  # when set, any other bearer token gets 401
    no_usage: bool = False  # send no usage, as llama-cpp-python's server does in streams
    # The tokenize route served ("/extras/tokenize" as llama-cpp-python's server, "/tokenize"
    # as llama.cpp's), counting words as this simulator's tokens; "" serves none.
    tokenize_route: str = ""


def _coerce(name: str, value: Any) -> Any:
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
    if kind not in FAULT_KINDS or not isinstance(spec, dict) or set(spec) - {"next", "rate"}:
        raise ValueError(f"fault {kind!r}: use one of {FAULT_KINDS} with {{next: N, rate: p}}")
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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._initial = config
        self.reset()

    def start(self) -> SimulatedLLM:
        self._stop.clear()
        self._server = _Server((self.host, self.port), self)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # benchmarks open 100+ connections at once

    def __init__(self, address: tuple[str, int], sim: SimulatedLLM) -> None:
        self.sim = sim
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can stall in sandboxes.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.sim.verbose:  # clients vanishing mid-response is routine here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai SDK's connection pool expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; Nagle would add ~40 ms per response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sim._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sim.verbose:
            super().log_message(format, *args)

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "X-Simulated": "1"}.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, body: Any, **headers: str) -> None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
        self._headers(status, headers)
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, code: str | None, **headers: str):
        self.server.sim._count(status)
        self._json(status, {"error": {"message": message, "type": kind, "code": code}}, **headers)

    def _abort(self) -> None:
        """Close the connection without (finishing) a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        sim, path = self.server.sim, self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            model = {"id": sim.config()["model"], "object": "model", "owned_by": "simulator"}
            self._json(200, {"object": "list", "data": [{**model, "created": 0}]})
        elif path in ("/_sim/stats", "/_sim/config"):
            self._json(200, sim.stats() if path.endswith("stats") else sim.config())
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        sim, path = self.server.sim, self.path.split("?", 1)[0].rstrip("/")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            body = None
        if path in CHAT_PATHS:
            self._chat(body if isinstance(body, dict) else {})
        elif path == "/_sim/config":
            try:
                self._json(200, sim.configure(**(body if isinstance(body, dict) else {})))
            except (TypeError, ValueError) as exc:
                self._json(400, {"error": {"message": str(exc), "type": "invalid_config"}})
        elif path and path == sim.config()["tokenize_route"].rstrip("/"):
            text = body.get("input", body.get("content", "")) if _is_dict(body) else ""
            self._json(200, {"tokens": list(range(_words(str(text))))})
        elif path == "/_sim/reset":
            sim.reset()
            self._json(200, sim.stats())
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def _chat(self, body: dict[str, Any]) -> None:
        sim, cfg = self.server.sim, self.server.sim._begin()
        messages = body.get("messages")
        if not messages or not isinstance(messages, list) or not all(map(_is_dict, messages)):
            msg = "'messages' must be a non-empty list of objects"
            return self._error(400, msg, "invalid_request_error", "invalid_request")
        key_msg, key_code = "Incorrect API key provided.", "invalid_api_key"
        if cfg.api_key and self.headers.get("Authorization") != f"Bearer {cfg.api_key}":
            return self._error(401, key_msg, "invalid_request_error", key_code)
        retry = {"Retry-After": str(cfg.retry_after)}
        if not sim._admit():
            msg = f"Rate limit reached: {cfg.capacity} requests in flight. Retry shortly."
            return self._error(429, msg, "rate_limit_error", "rate_limit_exceeded", **retry)
        admitted = time.monotonic()  # the answer's latency counts from here, work included
        self._holding = True
        try:  # faults are drawn only for admitted requests, so 429s do not consume them
            fault = sim._pick_fault()
            if fault == "auth":
                return self._error(401, key_msg, "invalid_request_error", key_code)
            if fault == "rate_limit":
                msg = "Rate limit reached (simulated). Retry shortly."
                return self._error(429, msg, "rate_limit_error", "rate_limit_exceeded", **retry)
            if fault == "server_error":
                msg = "The server had an error while processing your request (simulated)."
                return self._error(500, msg, "server_error", None)
            if fault == "hang":
                return self._hang(cfg.hang_seconds)
            self._complete(body, cfg, fault, admitted)
        except (BrokenPipeError, ConnectionResetError):
            sim._count(client_disconnects=1)
            self.close_connection = True
        finally:
            self._free_slot()

    def _free_slot(self) -> None:
        """Give the request's place back once, before its last bytes go out: a client that
        has read the whole answer may send its next request at once without a 429."""
        if getattr(self, "_holding", False):
            self._holding = False
            self.server.sim._release()

    def _hang(self, seconds: float) -> None:
        """Answer nothing; free the slot once the client gives up or the server stops."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(0.1, remaining))
            try:  # readable yet no data means the client closed its end
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    break
            except OSError:
                break
            if not self.server.sim._sleep(0.1 if readable else 0):
                break
        self._abort()

    def _complete(
        self, body: dict[str, Any], cfg: SimConfig, fault: str | None, admitted: float
    ) -> None:
        sim, messages = self.server.sim, body["messages"]
        sample = body.get("sample_index", (body.get("metadata") or {}).get("sample_index"))
        if sample is None and self.headers.get("X-Journey-Sample", "").isdigit():
            sample = int(self.headers["X-Journey-Sample"])  # what the expansion client sends
        content, thought = build_trace(messages, [sample, body.get("seed")], cfg.target_tokens)
        reasoning, finish = (thought if cfg.reasoning else None), "stop"
        if fault == "empty":  # no answer; a reasoning model may still have sent its thinking
            content = ""
        elif fault == "truncate":
            pieces = _pieces(content)
            content, finish = "".join(pieces[: len(pieces) // 2]), "length"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and _words(reasoning) + _words(content) > limit:
            # As with real reasoning models, the thinking spends the budget first.
            reasoning = "".join(_pieces(reasoning)[:limit]) if reasoning else reasoning
            content = "".join(_pieces(content)[: max(0, limit - _words(reasoning))])
            finish = "length"
        prompt = sum(_words(_message_text(m)) for m in messages)
        completion = _words(reasoning) + _words(content)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        base = {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": body.get("model") or cfg.model,
            "system_fingerprint": "simulated",
        }
        if body.get("stream"):
            parts = [("reasoning_content", reasoning or ""), ("content", content)]
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(base, parts, finish, usage, wants_usage, cfg, fault, admitted)
        due = admitted + cfg.time_to_first_token + completion * cfg.seconds_per_token
        if not sim._sleep(due - time.monotonic()):
            return self._abort()
        if fault == "drop":
            return self._abort()
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        result = {**base, "object": "chat.completion", "choices": [choice]}
        sim._count(200)
        self._free_slot()
        if not cfg.no_usage:
            result["usage"] = {**usage, "total_tokens": prompt + completion}
        self._json(200, result)
        sim._count(completed=1, **usage)

    def _stream(
        self,
        base: dict[str, Any],
        parts: list[tuple[str, str]],
        finish: str,
        usage: dict[str, int],
        wants_usage: bool,
        cfg: SimConfig,
        fault: str | None,
        admitted: float,
    ) -> None:
        sim = self.server.sim
        sim._count(200)
        # Chunked encoding, so a dropped connection is a detectable truncation for the client.
        stream_headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        self._headers(200, {**stream_headers, "Transfer-Encoding": "chunked"})

        def send(payload: bytes) -> None:
            self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")

        def chunk(delta: dict | None, reason: str | None = None, **extra: Any) -> None:
            choices = (
                [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": reason}]
            )
            data = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
            send(f"data: {json.dumps(data)}\n\n".encode())

        first = admitted + cfg.time_to_first_token
        if not sim._sleep(first - time.monotonic()):
            return self._abort()
        chunk({"role": "assistant", "content": ""})
        spt, sent, total = cfg.seconds_per_token, 0, sum(_words(text) for _, text in parts)
        per_chunk = max(1, int(cfg.chunk_interval / spt)) if spt > 0 else 64
        # Each batch is due at a fixed time from admission, so that send and scheduling
        # delays do not add up: the answer takes its tokens x seconds per token, no more.
        pieces_total, paced = sum(len(_pieces(text)) for _, text in parts), 0
        for field, text in parts:
            pieces = _pieces(text)
            for i in range(0, len(pieces), per_chunk):
                batch = pieces[i : i + per_chunk]
                paced += len(batch)
                due = first + usage["completion_tokens"] * spt * paced / pieces_total
                if not sim._sleep(due - time.monotonic()):
                    return self._abort()
                if fault == "drop" and sent >= total // 2:
                    return self._abort()  # mid-stream: no final chunk, no [DONE]
                chunk({field: "".join(batch)})
                sent += len(batch)
        if fault == "drop":
            return self._abort()
        self._free_slot()
        chunk({}, finish)
        if wants_usage and not cfg.no_usage:
            total_tokens = usage["prompt_tokens"] + usage["completion_tokens"]
            chunk(None, usage={**usage, "total_tokens": total_tokens})
        send(b"data: [DONE]\n\n")
        send(b"")  # the zero-length chunk ends the chunked body
        sim._count(completed=1, **usage)
