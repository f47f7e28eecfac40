"""The HTTP side of the simulated endpoint: routes, faults as responses, pacing, streaming.

The state it serves from (settings, counters, armed faults) lives in `SimulatedLLM`.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .simulated_judge import build_judgement, is_judge_request
from .simulated_solve import build_solution, is_solve_request
from .simulated_text import build_trace, message_text, word_count, word_pieces
from .simulator_pacing import GONE, STOPPED, Pacer

if TYPE_CHECKING:
    from .simulator import SimConfig, SimulatedLLM

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
BATCH_PREFIXES = ("/v1/files", "/v1/batches")


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def answer_parts(
    body: dict[str, Any], cfg: SimConfig, fault: str | None, sample: Any, judge_mode: str = "valid"
) -> tuple[dict[str, Any], str | None, str, str, dict[str, int]]:
    """What the simulated model answers to a chat request: (base fields, reasoning, content,
    finish reason, usage); the same for a streamed, an unstreamed and a batched request. A
    step-judge request is answered in ``judge_mode`` (devtools/simulated_judge.py), a solve
    request with a boxed answer (devtools/simulated_solve.py)."""
    messages = body["messages"]
    if is_judge_request(body):
        content, thought = build_judgement(body, judge_mode), ""
    elif is_solve_request(messages):
        content, thought = build_solution(messages, [sample, body.get("seed")], cfg.solve_tokens)
    else:
        content, thought = build_trace(messages, [sample, body.get("seed")], cfg.target_tokens)
    reasoning, finish = (thought if cfg.reasoning else None), "stop"
    if fault == "empty":  # no answer; a reasoning model may still have sent its thinking
        content = ""
    elif fault == "truncate":
        pieces = word_pieces(content)
        content, finish = "".join(pieces[: len(pieces) // 2]), "length"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and word_count(reasoning) + word_count(content) > limit:
        # As with real reasoning models, the thinking spends the budget first.
        reasoning = "".join(word_pieces(reasoning)[:limit]) if reasoning else reasoning
        content = "".join(word_pieces(content)[: max(0, limit - word_count(reasoning))])
        finish = "length"
    prompt = sum(word_count(message_text(m)) for m in messages)
    completion = word_count(reasoning) + word_count(content)
    base = {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": body.get("model") or cfg.model,
        "system_fingerprint": "simulated",
    }
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return base, reasoning, content, finish, usage


def _chunked(payload: bytes) -> bytes:
    """One chunk of a chunked HTTP body."""
    return f"{len(payload):X}\r\n".encode() + payload + b"\r\n"


def chat_completion(base, reasoning, content, finish, usage, cfg: SimConfig) -> dict[str, Any]:
    """An unstreamed chat.completion object."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    result = {**base, "object": "chat.completion", "choices": [choice]}
    if not cfg.no_usage:
        total = usage["prompt_tokens"] + usage["completion_tokens"]
        result["usage"] = {**usage, "total_tokens": total}
    return result


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # benchmarks open 100+ connections at once

    def __init__(self, address: tuple[str, int], sim: SimulatedLLM) -> None:
        self.sim = sim
        self.pacer = Pacer(sim._stop)  # writes every stream's chunks when due
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
    server: Server

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
        elif path.startswith(BATCH_PREFIXES):
            self._batch_route("GET", path, b"")
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        sim, path = self.server.sim, self.path.split("?", 1)[0].rstrip("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path.startswith(BATCH_PREFIXES):
            return self._batch_route("POST", path, raw)
        try:
            body = json.loads(raw)
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
            self._json(200, {"tokens": list(range(word_count(str(text))))})
        elif path == "/_sim/reset":
            sim.reset()
            self._json(200, sim.stats())
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def _batch_route(self, method: str, path: str, raw: bytes) -> None:
        sim = self.server.sim
        cfg = sim._begin_batch()  # not a chat request: the "requests" counter stays
        if cfg.api_key and self.headers.get("Authorization") != f"Bearer {cfg.api_key}":
            msg = "Incorrect API key provided."
            return self._error(401, msg, "invalid_request_error", "invalid_api_key")
        status, body = sim.batches.route(method, path, raw, self.headers.get("Content-Type", ""))
        if isinstance(body, bytes):  # a file's content
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
            self._headers(status, headers)
            self.wfile.write(body)
        else:
            self._json(status, body)

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
        sim = self.server.sim
        sample = body.get("sample_index", (body.get("metadata") or {}).get("sample_index"))
        if sample is None and self.headers.get("X-Journey-Sample", "").isdigit():
            sample = int(self.headers["X-Journey-Sample"])  # what the expansion client sends
        judge_mode = sim._judge_mode() if is_judge_request(body) else "valid"
        base, reasoning, content, finish, usage = answer_parts(body, cfg, fault, sample, judge_mode)
        completion = usage["completion_tokens"]
        if body.get("stream"):
            parts = [("reasoning_content", reasoning or ""), ("content", content)]
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(base, parts, finish, usage, wants_usage, cfg, fault, admitted)
        due = admitted + cfg.time_to_first_token + completion * cfg.seconds_per_token
        if not sim._sleep(due - time.monotonic()):
            return self._abort()
        if fault == "drop":
            return self._abort()
        result = chat_completion(base, reasoning, content, finish, usage, cfg)
        sim._count(200)
        self._free_slot()
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
            self.wfile.write(_chunked(payload))

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
        spt, total = cfg.seconds_per_token, sum(word_count(text) for _, text in parts)
        per_chunk = max(1, int(cfg.chunk_interval / spt)) if spt > 0 else 64
        # Every chunk but the role's and the last ones is a JSON text around its delta.
        head = json.dumps({**base, "object": "chat.completion.chunk"})[:-1]
        head += ', "choices": [{"index": 0, "delta": {'

        def frames() -> Iterator[tuple[float, bytes]]:
            # Each batch is due at a fixed time from admission, so that send and scheduling
            # delays do not add up: the answer takes its tokens x seconds per token, no more.
            pieces_total, paced, sent = sum(len(word_pieces(text)) for _, text in parts), 0, 0
            for field, text in parts:
                pieces = word_pieces(text)
                for i in range(0, len(pieces), per_chunk):
                    if fault == "drop" and sent >= total // 2:
                        return  # mid-stream: no final chunk, no [DONE]
                    batch = pieces[i : i + per_chunk]
                    paced += len(batch)
                    due = first + usage["completion_tokens"] * spt * paced / pieces_total
                    delta = f'"{field}": {json.dumps("".join(batch))}}}'
                    payload = f'data: {head}{delta}, "finish_reason": null}}]}}\n\n'.encode()
                    yield due, _chunked(payload)
                    sent += len(batch)

        outcome = self.server.pacer.send(self.connection, frames())
        if outcome == GONE:
            raise BrokenPipeError  # counted as the client's disconnect
        if outcome == STOPPED:
            return self._abort()
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
