"""The simulated endpoint's batch API (OpenAI's /v1/files and /v1/batches).

A batch is ``validating``, then ``in_progress``, then ``finalizing``, then ``completed``:
each phase a share of ``batch_seconds`` (a fifth, the whole, a fifth), so that tests see
every state in a second or two. Its answers are the chat route's, made when it ends and
written as an output file (one line per answered request) and an error file (one per
failed one), as OpenAI writes them. Faults, armed with ``faults={"batch_expire": {"next":
N}}`` or ``"batch_fail_lines"``, apply to the next N batches created:

- ``batch_expire``: the batch runs out of its window half done: ``expired``, the first
  half of its requests answered, the rest in the error file as ``batch_expired``;
- ``batch_fail_lines``: every second request fails (a 500 in the error file); the batch
  still completes.

``POST /v1/batches/{id}/cancel`` stops a batch: ``cancelling``, then ``cancelled`` with
the requests answered so far.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from .simulator_http import answer_parts, chat_completion

if TYPE_CHECKING:
    from .simulator import SimulatedLLM

BATCH_FAULT_KINDS = ("batch_expire", "batch_fail_lines")
CHAT_URL = "/v1/chat/completions"


def _not_found(what: str) -> tuple[int, dict]:
    return 404, {"error": {"message": f"No such {what}", "type": "invalid_request_error",
                           "code": "not_found"}}  # fmt: skip


def _bad(message: str) -> tuple[int, dict]:
    return 400, {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (file name, bytes)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        return {}
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class BatchStore:
    """Files and batches of one simulated server, kept in memory."""

    def __init__(self, sim: SimulatedLLM) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.batches.clear()

    # -- routes ------------------------------------------------------------------------
    def route(self, method: str, path: str, raw: bytes, content_type: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")  # ["v1", "files" | "batches", id?, action?]
        kind, rest = parts[1], parts[2:]
        if kind == "files":
            if method == "POST" and not rest:
                return self._upload(_multipart(content_type, raw))
            if method == "GET" and len(rest) == 1:
                meta = self.files.get(rest[0])
                return (200, meta["object"]) if meta else _not_found("file")
            if method == "GET" and len(rest) == 2 and rest[1] == "content":
                meta = self.files.get(rest[0])
                return (200, meta["content"]) if meta else _not_found("file")
        elif kind == "batches":
            if method == "POST" and not rest:
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return _bad("The body is not JSON.")
                return self._create(body if isinstance(body, dict) else {})
            if method == "GET" and not rest:
                with self.lock:
                    data = [self._view(batch) for batch in self.batches.values()]
                return 200, {"object": "list", "data": data[::-1], "has_more": False}
            if method == "GET" and len(rest) == 1:
                with self.lock:
                    batch = self.batches.get(rest[0])
                    return (200, self._view(batch)) if batch else _not_found("batch")
            if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
                return self._cancel(rest[0])
        return 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}}

    def _add_file(self, name: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-sim-{uuid.uuid4().hex[:24]}"
        obj = {"id": file_id, "object": "file", "bytes": len(content), "filename": name,
               "created_at": int(time.time()), "purpose": purpose,
               "status": "processed"}  # fmt: skip
        self.files[file_id] = {"object": obj, "content": content}
        return obj

    def _upload(self, fields: dict[str, tuple[str | None, bytes]]) -> tuple[int, Any]:
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields:
            return _bad("Upload a file as multipart/form-data field 'file'.")
        if purpose != "batch":
            return _bad(f"purpose must be 'batch' here, not {purpose!r}.")
        name, content = fields["file"]
        with self.lock:
            return 200, self._add_file(name or "upload.jsonl", content, purpose)

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("endpoint") != CHAT_URL:
            return _bad(f"endpoint must be {CHAT_URL}.")
        if body.get("completion_window") != "24h":
            return _bad("completion_window must be '24h'.")
        source = self.files.get(str(body.get("input_file_id")))
        if source is None:
            return _not_found("file")
        lines = [line for line in source["content"].decode().splitlines() if line.strip()]
        try:
            requests = [json.loads(line) for line in lines]
        except ValueError:
            return _bad("The input file is not JSONL.")
        now = time.time()
        fault = self.sim._pick_batch_fault()
        batch_id = f"batch_sim_{uuid.uuid4().hex[:24]}"
        batch = {
            "id": batch_id, "object": "batch", "endpoint": CHAT_URL, "errors": None,
            "input_file_id": source["object"]["id"], "completion_window": "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": int(now), "in_progress_at": None, "expires_at": int(now) + 86400,
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None, "cancelled_at": None, "metadata": body.get("metadata"),
            "request_counts": {"total": len(requests), "completed": 0, "failed": 0},
            "_started": time.monotonic(), "_requests": requests, "_fault": fault,
            "_cancel_at": None,
        }  # fmt: skip
        ids = [r.get("custom_id") for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids) or None in ids:
            batch.update(status="failed", failed_at=int(now), errors={"object": "list", "data": [
                {"code": "duplicate_custom_id", "message": "Each line needs its own custom_id."}
            ]})  # fmt: skip
        with self.lock:
            self.batches[batch_id] = batch
        self.sim._count(batches=1, batch_requests=len(requests))
        with self.lock:
            return 200, self._view(batch)

    def _cancel(self, batch_id: str) -> tuple[int, Any]:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return _not_found("batch")
            self._advance(batch)
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["_cancel_at"] = time.monotonic()
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return 200, self._view(batch)

    # -- progress ----------------------------------------------------------------------
    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        self._advance(batch)
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _advance(self, batch: dict[str, Any]) -> None:
        """Bring the batch to the state its age gives it (called under the lock)."""
        if batch["status"] in ("completed", "expired", "cancelled", "failed"):
            return
        total_time = self.sim.config()["batch_seconds"]
        validate, run = total_time / 5, total_time
        now, elapsed = time.time(), time.monotonic() - batch["_started"]
        total = len(batch["_requests"])
        if batch["_cancel_at"] is not None:
            if time.monotonic() - batch["_cancel_at"] >= validate:
                share = (batch["_cancel_at"] - batch["_started"] - validate) / run
                done = int(total * min(1.0, max(0.0, share)))
                self._end(batch, "cancelled", answered=done)
            return
        if elapsed >= validate and batch["in_progress_at"] is None:
            batch.update(status="in_progress", in_progress_at=int(now))
        if batch["status"] == "in_progress":
            share = min(1.0, (elapsed - validate) / run)
            batch["request_counts"]["completed"] = int(total * share)
            if batch["_fault"] == "batch_expire" and share >= 1.0:
                return self._end(batch, "expired", answered=total // 2)
            if share >= 1.0:
                batch.update(status="finalizing", finalizing_at=int(now))
        if batch["status"] == "finalizing" and elapsed >= validate + run + validate:
            self._end(batch, "completed", answered=total)

    def _end(self, batch: dict[str, Any], status: str, *, answered: int) -> None:
        cfg = self.sim._begin_batch()
        output, errors = [], []
        for index, request in enumerate(batch["_requests"]):
            line = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": request["custom_id"],
                    "response": None, "error": None}  # fmt: skip
            body = request.get("body")
            if index >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                line["error"] = {"code": code, "message": "This request could not be executed "
                                 f"before the batch was {status}."}  # fmt: skip
                errors.append(line)
            elif not _is_chat_request(request):
                line["response"] = _failed(400, "Not a chat completion request.",
                                           "invalid_request_error")  # fmt: skip
                errors.append(line)
            elif batch["_fault"] == "batch_fail_lines" and index % 2 == 1:
                line["response"] = _failed(500, "The server had an error (simulated).",
                                           "server_error")  # fmt: skip
                errors.append(line)
            else:
                sample = (body.get("metadata") or {}).get("sample_index", request["custom_id"])
                base, reasoning, content, finish, usage = answer_parts(body, cfg, None, sample)
                result = chat_completion(base, reasoning, content, finish, usage, cfg)
                line["response"] = {"status_code": 200, "request_id": uuid.uuid4().hex,
                                    "body": result}  # fmt: skip
                output.append(line)
                self.sim._count(completed=1, **usage)
        now = int(time.time())
        if output:
            name = f"{batch['id']}_output.jsonl"
            batch["output_file_id"] = self._add_file(name, _jsonl(output), "batch_output")["id"]
        if errors:
            name = f"{batch['id']}_error.jsonl"
            batch["error_file_id"] = self._add_file(name, _jsonl(errors), "batch_output")["id"]
        batch["request_counts"].update(completed=len(output), failed=len(errors))
        batch.update(status=status, **{f"{status}_at": now})


def _is_chat_request(request: dict[str, Any]) -> bool:
    body = request.get("body")
    return request.get("url") == CHAT_URL and isinstance(body, dict) and bool(body.get("messages"))


def _failed(status: int, message: str, kind: str) -> dict[str, Any]:
    body = {"error": {"message": message, "type": kind, "code": None}}
    return {"status_code": status, "request_id": uuid.uuid4().hex, "body": body}


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()
