"""The limits every worker shares for one endpoint: requests in flight, per minute, tokens per
minute, and a cool-down after the endpoint says 429.

With Redis (REDIS_URL) the state lives there, so all worker processes and hosts respect one
limit; each slot is a member of a sorted set scored by its expiry, so a worker that dies
holding slots frees them when they expire. Without Redis (the embedded defaults: one demo
worker) a process-local limiter does the same job.
"""

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

# A held slot expires unless its process renews it: a worker that dies frees its slots
# within SLOT_TTL seconds, while a live one renews them every SLOT_RENEW seconds.
logger = logging.getLogger(__name__)
SLOT_TTL = 30
SLOT_RENEW = 10
POLL = 0.02
# A server that cuts streams while others are in flight serves fewer at once than the
# endpoint allows (llama-cpp-python's server interrupts a running request for a new one):
# after CUTS_BEFORE_LOWERING such cuts within CUT_WINDOW seconds, the endpoint's slots are
# halved, and the lowered count holds until CAP_RECOVERY seconds pass without another.
CUTS_BEFORE_LOWERING = 2
CUT_WINDOW = 300
CAP_RECOVERY = 600

# KEYS: in_flight, minute_requests, minute_tokens, cooldown, cap (lowered max in flight)
# ARGV: now, slot_id, max_in_flight, rpm (0 = none), tpm (0 = none), tokens, ttl
ACQUIRE = """
local now = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[4]) or '0') > now then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = math.min(tonumber(ARGV[3]), tonumber(redis.call('GET', KEYS[5]) or ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
local rpm, tpm, tokens = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if rpm > 0 or tpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
  if rpm > 0 and redis.call('ZCARD', KEYS[2]) >= rpm then return 0 end
  if tpm > 0 then
    local used = 0
    for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
      used = used + tonumber(string.match(member, ':(%d+)$'))
    end
    if used + tokens > tpm then return 0 end
  end
  redis.call('ZADD', KEYS[2], now, ARGV[2] .. ':' .. ARGV[6])
  redis.call('EXPIRE', KEYS[2], 120)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[7]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
return 1
"""


# KEYS: minute_requests; ARGV: slot_id, tokens booked, tokens used
SETTLE = """
local booked = ARGV[1] .. ':' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], booked)
if not score then return 0 end
redis.call('ZREM', KEYS[1], booked)
redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. ARGV[3])
return 1
"""


# KEYS: in_flight, cap, cuts; ARGV: now, max_in_flight, cuts before lowering, window, recovery
# Returns the lowered max in flight, or 0 when it stays as it was.
STREAM_CUT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local others = redis.call('ZCARD', KEYS[1])
if others == 0 then return 0 end
local cuts = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
local current = tonumber(redis.call('GET', KEYS[2]) or ARGV[2])
if cuts < tonumber(ARGV[3]) then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
  return 0
end
redis.call('DEL', KEYS[3])
local lowered = math.max(1, math.floor(math.min(current, others + 1) / 2))
redis.call('SET', KEYS[2], lowered, 'EX', tonumber(ARGV[5]))
return lowered
"""


def _lowered(current: int, others: int) -> int:
    """Half of what was in flight when the server cut a stream (itself and the others)."""
    return max(1, min(current, others + 1) // 2)


class LimitTimeout(Exception):
    """No slot came free in time; the job goes back to the queue."""


def bookkeeping(action: str, call, *args) -> None:
    """Run one of the limiter's after-the-fact writes (give a slot back, book the tokens
    used, start a cool-down) without ever raising: it comes after an answer was paid for,
    and a Redis blip must not cost that answer. A slot whose release failed expires on its
    own within SLOT_TTL seconds; a booking that failed only makes the minute's count high."""
    try:
        call(*args)
    except Exception:
        logger.warning("Could not %s on the shared limiter; carrying on", action, exc_info=True)


class _RedisLimiter:
    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.acquire_script = self.redis.register_script(ACQUIRE)
        self.settle_script = self.redis.register_script(SETTLE)
        self.stream_cut_script = self.redis.register_script(STREAM_CUT)
        self.held: dict[str, str] = {}  # slot -> in-flight key, renewed while held
        self.held_lock = threading.Lock()
        threading.Thread(target=self._renew_forever, name="slot-renewer", daemon=True).start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(SLOT_RENEW)
            with self.held_lock:
                held = list(self.held.items())
            expiry = time.time() + SLOT_TTL
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for slot, key in held:
                        pipe.zadd(key, {slot: expiry}, xx=True)
                    pipe.execute()
            except Exception:  # Redis blips must not kill the renewer; try again next round
                logger.warning("Could not renew endpoint slots", exc_info=True)

    def _keys(self, endpoint_id: int) -> list[str]:
        prefix = f"journey:endpoint:{endpoint_id}"
        names = ("inflight", "minute", "tokens", "cooldown", "cap", "cuts")
        return [f"{prefix}:{name}" for name in names]

    def try_acquire(self, endpoint, slot: str, tokens: int) -> bool:
        acquired = bool(
            self.acquire_script(
                keys=self._keys(endpoint.pk),
                args=[
                    time.time(),
                    slot,
                    endpoint.max_in_flight,
                    endpoint.requests_per_minute or 0,
                    endpoint.tokens_per_minute or 0,
                    tokens,
                    SLOT_TTL,
                ],  # fmt: skip
            )
        )
        if acquired:
            with self.held_lock:
                self.held[slot] = self._keys(endpoint.pk)[0]
        return acquired

    def release(self, endpoint, slot: str) -> None:
        with self.held_lock:
            self.held.pop(slot, None)
        self.redis.zrem(self._keys(endpoint.pk)[0], slot)

    def settle(self, endpoint, slot: str, booked: int, used: int) -> None:
        self.settle_script(keys=[self._keys(endpoint.pk)[1]], args=[slot, booked, used])

    def cool_down(self, endpoint, seconds: float) -> None:
        key = self._keys(endpoint.pk)[3]
        until = time.time() + seconds
        # Only ever extend a cool-down, never shorten one another worker set.
        current = float(self.redis.get(key) or 0)
        if until > current:
            self.redis.set(key, until, ex=max(1, int(seconds) + 1))

    def in_flight(self, endpoint) -> int:
        key = self._keys(endpoint.pk)[0]
        self.redis.zremrangebyscore(key, "-inf", time.time())
        return self.redis.zcard(key)

    def stream_cut(self, endpoint) -> int:
        inflight, *_, cap, cuts = self._keys(endpoint.pk)
        args = [time.time(), endpoint.max_in_flight, CUTS_BEFORE_LOWERING, CUT_WINDOW, CAP_RECOVERY]
        return int(self.stream_cut_script(keys=[inflight, cap, cuts], args=args))

    def max_in_flight(self, endpoint) -> int:
        cap = self.redis.get(self._keys(endpoint.pk)[4])
        return min(endpoint.max_in_flight, int(cap)) if cap else endpoint.max_in_flight


class _LocalLimiter:
    def __init__(self):
        self.lock = threading.Lock()
        self.slots: dict[int, set[str]] = {}
        self.minute: dict[int, list[tuple[float, int]]] = {}
        self.cooldown: dict[int, float] = {}
        self.cuts: dict[int, list[float]] = {}  # times of cuts while others were in flight
        self.cap: dict[int, tuple[int, float]] = {}  # lowered max in flight, until when

    def try_acquire(self, endpoint, slot: str, tokens: int) -> bool:
        now = time.time()
        with self.lock:
            if self.cooldown.get(endpoint.pk, 0) > now:
                return False
            slots = self.slots.setdefault(endpoint.pk, set())
            if len(slots) >= self._max_in_flight(endpoint, now):
                return False
            window = [entry for entry in self.minute.get(endpoint.pk, []) if entry[0] > now - 60]
            if endpoint.requests_per_minute and len(window) >= endpoint.requests_per_minute:
                return False
            if endpoint.tokens_per_minute and sum(n for _, n, _ in window) + tokens > (
                endpoint.tokens_per_minute
            ):
                return False
            window.append((now, tokens, slot))
            self.minute[endpoint.pk] = window
            slots.add(slot)
            return True

    def release(self, endpoint, slot: str) -> None:
        with self.lock:
            self.slots.get(endpoint.pk, set()).discard(slot)

    def settle(self, endpoint, slot: str, booked: int, used: int) -> None:
        with self.lock:
            window = self.minute.get(endpoint.pk, [])
            self.minute[endpoint.pk] = [(t, used if s == slot else n, s) for t, n, s in window]

    def cool_down(self, endpoint, seconds: float) -> None:
        with self.lock:
            self.cooldown[endpoint.pk] = max(
                self.cooldown.get(endpoint.pk, 0), time.time() + seconds
            )

    def in_flight(self, endpoint) -> int:
        return len(self.slots.get(endpoint.pk, ()))

    def _max_in_flight(self, endpoint, now: float) -> int:
        cap, until = self.cap.get(endpoint.pk, (endpoint.max_in_flight, 0.0))
        return min(endpoint.max_in_flight, cap) if until > now else endpoint.max_in_flight

    def max_in_flight(self, endpoint) -> int:
        with self.lock:
            return self._max_in_flight(endpoint, time.time())

    def stream_cut(self, endpoint) -> int:
        now = time.time()
        with self.lock:
            others = len(self.slots.get(endpoint.pk, ()))
            if not others:
                return 0
            cuts = [t for t in self.cuts.get(endpoint.pk, []) if t > now - CUT_WINDOW] + [now]
            current = self._max_in_flight(endpoint, now)
            if len(cuts) < CUTS_BEFORE_LOWERING:
                self.cuts[endpoint.pk] = cuts
                if current < endpoint.max_in_flight:  # still cutting: lowered for longer
                    self.cap[endpoint.pk] = (current, now + CAP_RECOVERY)
                return 0
            self.cuts[endpoint.pk] = []
            lowered = _lowered(current, others)
            self.cap[endpoint.pk] = (lowered, now + CAP_RECOVERY)
            return lowered


_limiter = None
_limiter_lock = threading.Lock()


def limiter():
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            _limiter = _RedisLimiter(settings.REDIS_URL) if settings.REDIS_URL else _LocalLimiter()
        return _limiter


def endpoint_stream_cut(endpoint) -> None:
    """Count a stream the endpoint's server cut; when it keeps cutting streams while other
    requests to it are in flight, serve fewer at once for a while instead of paying for
    attempts it will cut again (the endpoint's own max in flight is left as an admin set it)."""
    try:
        lowered = limiter().stream_cut(endpoint)
    except Exception:  # the bookkeeping must never cost the job its retry
        logger.warning("Could not count a cut stream of %s", endpoint.name, exc_info=True)
        return
    if lowered:
        logger.warning(
            "%s cut %d streams while other requests were in flight: at most %d at a time for "
            "the next %d s. Check the server's own concurrency (llama-cpp-python: "
            "--interrupt_requests False) or lower the endpoint's max in flight.",
            endpoint.name, CUTS_BEFORE_LOWERING, lowered, CAP_RECOVERY,
        )  # fmt: skip


class _Gate:
    """This process's waiters for one endpoint's slots: one at a time asks the shared limiter
    (the others wait here without a round trip to Redis), and a slot this process gives back
    wakes it at once; slots freed by other processes are seen by asking every POLL seconds."""

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self.freed = threading.Condition()


_gates: dict[int, _Gate] = {}
_gates_lock = threading.Lock()


def _gate(endpoint) -> _Gate:
    with _gates_lock:
        return _gates.setdefault(endpoint.pk, _Gate())


@contextmanager
def endpoint_slot(endpoint, *, tokens: int, wait: float = 60.0) -> Iterator[str]:
    """Hold one of the endpoint's shared slots for the duration of a request; yields the
    slot's id. ``tokens`` is booked against tokens per minute until the request's real
    usage is known: then ``limiter().settle(endpoint, slot, tokens, used)``."""
    slot = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    shared, gate = limiter(), _gate(endpoint)
    timeout = LimitTimeout(f"No free slot on {endpoint.name} within {wait:.0f} s.")
    if not gate.turn.acquire(timeout=max(0.0, wait)):
        raise timeout
    try:
        while not shared.try_acquire(endpoint, slot, tokens):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout
            with gate.freed:
                gate.freed.wait(min(POLL, remaining))
    finally:
        gate.turn.release()
    try:
        yield slot
    finally:
        bookkeeping("release a slot", shared.release, endpoint, slot)
        with gate.freed:
            gate.freed.notify()
