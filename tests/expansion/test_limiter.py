"""The shared endpoint limits, on Redis when REDIS_URL is set and in-process otherwise."""

import threading
import time

import pytest

from expansion.limiter import LimitTimeout, endpoint_slot
from expansion.models import LLMEndpoint

pytestmark = pytest.mark.django_db


def make_endpoint(**limits):
    return LLMEndpoint.objects.create(
        name=f"e{LLMEndpoint.objects.count()}", base_url="http://127.0.0.1:9/v1", model="m",
        **limits,
    )  # fmt: skip


def test_never_more_requests_in_flight_than_the_limit(shared):
    endpoint = make_endpoint(max_in_flight=3)
    peak, current, lock = [0], [0], threading.Lock()

    def call():
        with endpoint_slot(endpoint, tokens=10, wait=10):
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            time.sleep(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3
    assert shared.in_flight(endpoint) == 0


def test_waiters_behind_another_waiter_still_give_up_in_time(shared):
    endpoint = make_endpoint(max_in_flight=1)
    holding, done, outcomes = threading.Event(), threading.Event(), []

    def holder():
        with endpoint_slot(endpoint, tokens=1, wait=1):
            holding.set()
            done.wait(5)

    def waiter(wait):
        try:
            with endpoint_slot(endpoint, tokens=1, wait=wait):
                outcomes.append("slot")
        except LimitTimeout:
            outcomes.append("timeout")

    threading.Thread(target=holder).start()
    holding.wait(5)
    waiters = [threading.Thread(target=waiter, args=(w,)) for w in (0.3, 0.1, 0.1)]
    for thread in waiters:
        thread.start()
    for thread in waiters:
        thread.join(5)
    assert outcomes == ["timeout"] * 3
    done.set()
    with endpoint_slot(endpoint, tokens=1, wait=2):  # freed: the next one gets it
        assert shared.in_flight(endpoint) == 1


def test_requests_per_minute(shared):
    endpoint = make_endpoint(max_in_flight=10, requests_per_minute=2)
    for _ in range(2):
        with endpoint_slot(endpoint, tokens=1, wait=1):
            pass
    with pytest.raises(LimitTimeout), endpoint_slot(endpoint, tokens=1, wait=0.2):
        pass


def test_tokens_per_minute(shared):
    endpoint = make_endpoint(max_in_flight=10, tokens_per_minute=1000)
    with endpoint_slot(endpoint, tokens=800, wait=1):
        pass
    with pytest.raises(LimitTimeout), endpoint_slot(endpoint, tokens=300, wait=0.2):
        pass


def test_tokens_per_minute_count_what_a_request_used_once_known(shared):
    endpoint = make_endpoint(max_in_flight=10, tokens_per_minute=10_000)
    for _ in range(3):  # each books its most (prompt + max_tokens), then uses 1,500
        with endpoint_slot(endpoint, tokens=4_000, wait=1) as slot:
            pass
        shared.settle(endpoint, slot, 4_000, 1_500)
    with endpoint_slot(endpoint, tokens=4_000, wait=1):  # 4,500 used + 4,000 booked
        pass
    with pytest.raises(LimitTimeout), endpoint_slot(endpoint, tokens=4_000, wait=0.2):
        pass  # 8,500 + 4,000 would be over


def test_a_cool_down_after_429_holds_everyone_back(shared):
    endpoint = make_endpoint(max_in_flight=10)
    shared.cool_down(endpoint, 0.5)
    started = time.monotonic()
    with endpoint_slot(endpoint, tokens=1, wait=5):
        pass
    assert time.monotonic() - started >= 0.4
