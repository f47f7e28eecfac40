"""The simulator's streams, all written by one pacing thread (devtools/simulator_pacing.py)."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai

from devtools.simulator import SimulatedLLM

MESSAGES = [{"role": "user", "content": "Expand: Step 1 (attempt): add the two numbers."}]


def client(sim, timeout: float = 20.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=timeout)


def streamed(sim, sample: int) -> str:
    chunks = client(sim).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, extra_headers={"X-Journey-Sample": str(sample)}
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def unstreamed(sim, sample: int) -> str:
    answer = client(sim).chat.completions.create(
        model="m", messages=MESSAGES, extra_headers={"X-Journey-Sample": str(sample)}
    )
    return answer.choices[0].message.content


def raw_stream(sim, receive_buffer: int | None = None) -> socket.socket:
    """A streamed request sent on a plain socket, whose answer nobody reads yet."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((sim.host, sim.port))
    body = json.dumps({"model": "m", "stream": True, "messages": MESSAGES}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_concurrent_streams_each_get_their_own_whole_answer():
    with SimulatedLLM(seconds_per_token=0.001, target_tokens=200, chunk_interval=0.01) as sim:
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda i: streamed(sim, i), range(24)))
        assert answers == [unstreamed(sim, i) for i in range(24)]  # none interleaved or cut
        assert len(set(answers)) > 1  # the samples differ, so a mix-up would show
        assert sim.stats()["completed"] == 48 and sim.stats()["in_flight"] == 0


def test_a_client_that_stops_reading_holds_up_only_its_own_stream():
    # A long answer written at once (no pacing) into a client whose buffers fill up: were the
    # pacer to block on that socket, no other stream would get a byte until it was read.
    with SimulatedLLM(seconds_per_token=0.0, target_tokens=800_000) as sim:
        stalled = raw_stream(sim, receive_buffer=4096)
        wait_for(lambda: sim.stats()["in_flight"] == 1)  # its answer drawn at 800,000 tokens
        sim.configure(target_tokens=100)
        others = [streamed(sim, i) for i in range(3)]  # the client's timeout is the failure
        assert all(text.endswith("<|end_of_solution|>") for text in others)
        answer = read_all(stalled)  # read late, the stalled answer is whole all the same
        stalled.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in answer
        assert answer.count(b"data: ") > 100


def test_a_client_that_leaves_mid_stream_is_counted_and_frees_its_slot():
    with SimulatedLLM(seconds_per_token=0.002, target_tokens=2000, chunk_interval=0.01) as sim:
        sock = raw_stream(sim)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # a reset, as a killed worker's connection ends
        wait_for(lambda: sim.stats()["client_disconnects"])
        assert sim.stats()["client_disconnects"] == 1 and sim.stats()["in_flight"] == 0
        assert streamed(sim, 0).endswith("<|end_of_solution|>")  # the pacer goes on


def test_stopping_the_server_cuts_its_streams():
    sim = SimulatedLLM(seconds_per_token=0.01, target_tokens=5000, chunk_interval=0.02).start()
    errors: list[Exception] = []

    def read() -> None:
        try:
            streamed(sim, 0)
        except (openai.APIError, httpx.HTTPError) as exc:  # a cut body: a protocol error
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: sim.stats()["in_flight"])
    sim.stop()
    reader.join(timeout=10)
    assert not reader.is_alive() and len(errors) == 1
    assert sim.stats()["completed"] == 0


def test_a_dropped_stream_ends_half_way_without_its_last_chunk():
    with SimulatedLLM(seconds_per_token=0.0005, target_tokens=400, chunk_interval=0.005) as sim:
        sim.configure(faults={"drop": {"next": 1}})
        sock = raw_stream(sim)
        answer = read_all(sock).decode()
        sock.close()
        words = sum(
            len((json.loads(line[6:])["choices"][0]["delta"].get("content") or "").split())
            for line in answer.splitlines()
            if line.startswith("data: {") and json.loads(line[6:])["choices"]
        )
        assert "[DONE]" not in answer and '"finish_reason": "stop"' not in answer
        assert 150 <= words <= 250  # about half of the 400
