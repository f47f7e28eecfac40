"""One thread that writes every stream's chunks when they are due.

A request handler thread that slept until each chunk of its answer was due, then wrote it,
made the simulator the busiest process of a benchmark: at 256 streams in flight, 256 threads
woke 20 times a second each and fought for the interpreter lock, about 125 microseconds of
CPU per chunk. Here a handler hands its answer's chunks to the `Pacer` and blocks until they
are all out; the pacer's one thread sleeps until the next chunk is due, then writes every due
chunk of every stream (those of one stream that fell due together in one send) on sockets
that are non-blocking meanwhile, so a client that stops reading holds up only its own stream.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator

# A stream's outcome, read by its handler once `done` is set.
SENT, GONE, STOPPED = "sent", "gone", "stopped"
IDLE_WAIT = 0.1  # seconds between looks at the stop flag when nothing is due
RETRY_WAIT = 0.005  # seconds before writing again to a client whose socket buffer was full
# Frames due this close are written together, a little early, rather than each in its own
# wake-up: 256 streams' chunks would otherwise each be due at a time of their own.
SLACK = 0.002


class _Stream:
    __slots__ = ("sock", "frames", "next", "pending", "done", "outcome")

    def __init__(self, sock: socket.socket, frames: Iterator[tuple[float, bytes]]) -> None:
        self.sock, self.frames = sock, frames
        self.next = next(frames, None)  # the first frame not yet due
        self.pending = bytearray()  # due, not yet taken by the socket
        self.done = threading.Event()
        self.outcome = SENT


class Pacer:
    """`pacer.send(sock, frames)` writes each ``(due, data)`` of ``frames`` (monotonic due
    times, in order) at its time and returns SENT, GONE (the client closed its end) or STOPPED
    (``stopping`` was set). The socket is left as it was found (blocking, with its timeout)."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, _Stream]] = []
        self._order = itertools.count()  # ties on the due time go in arrival order
        self._thread: threading.Thread | None = None

    def send(self, sock: socket.socket, frames: Iterator[tuple[float, bytes]]) -> str:
        stream = _Stream(sock, frames)
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            with self._wake:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, daemon=True, name="pacer")
                    self._thread.start()
                self._push(stream, stream.next[0] if stream.next else time.monotonic())
                self._wake.notify()
            while not stream.done.wait(1.0):
                if self._stopping.is_set() and not self._thread.is_alive():
                    stream.outcome = STOPPED  # came in as the pacer stopped
                    break
        finally:
            sock.settimeout(timeout)
        return stream.outcome

    def _push(self, stream: _Stream, when: float) -> None:
        heapq.heappush(self._heap, (when, next(self._order), stream))

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._wake:
                    now = time.monotonic() + SLACK
                    if not self._heap or self._heap[0][0] > now:
                        wait = self._heap[0][0] - now if self._heap else IDLE_WAIT
                        self._wake.wait(min(wait, IDLE_WAIT))
                        continue
                    due = []
                    while self._heap and self._heap[0][0] <= now:
                        due.append(heapq.heappop(self._heap)[2])
                # Written outside the lock, so that handlers can hand in streams meanwhile.
                later = [(when, s) for s in due if (when := self._advance(s, now))]
                with self._wake:
                    for when, stream in later:
                        self._push(stream, when)
        finally:  # stopping, or a failure here: no handler may wait forever
            with self._wake:
                left, self._heap = self._heap, []
            for _, _, stream in left:
                self._finish(stream, STOPPED)

    def _advance(self, stream: _Stream, now: float) -> float | None:
        """Write the stream's frames due by ``now`` in one send: when to come back to it, or
        None once it is finished."""
        while stream.next is not None and stream.next[0] <= now:
            stream.pending += stream.next[1]
            stream.next = next(stream.frames, None)
        if stream.pending:
            try:
                sent = stream.sock.send(stream.pending)
            except BlockingIOError:
                sent = 0
            except OSError:  # reset, broken pipe: the client is gone
                return self._finish(stream, GONE)
            del stream.pending[:sent]
            if stream.pending:  # the client reads slower than the answer comes
                return now + RETRY_WAIT
        if stream.next is None:
            return self._finish(stream, SENT)
        return stream.next[0]

    @staticmethod
    def _finish(stream: _Stream, outcome: str) -> None:
        stream.outcome = outcome
        stream.done.set()
