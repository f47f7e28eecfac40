"""Token counts and cost that say where they come from.

A provider reports usage with its answer; some do not (llama-cpp-python's server sends none
in streams, nor do some proxies). Their tokens are then counted here, in this order:

1. the server's own tokenize route, when it has one: llama-cpp-python's
   ``POST /extras/tokenize {"input"}``, llama.cpp's ``POST /tokenize {"content"}``, vLLM's
   ``POST /tokenize {"model", "prompt"}``, each answering with its ``tokens`` (vLLM also a
   ``count``). Which route an endpoint answered on, or that it answered on none, is kept per
   base URL in each process, so that a server is asked at most once a while which it has;
2. otherwise an estimate: characters / 4, rounded up, OpenAI's rule of thumb for English
   text, which LaTeX-heavy math tends to exceed rather than undercut.

tiktoken is not used: its encodings are downloaded from the internet on first use, which a
worker without internet access cannot do, and no package on the allowed registry ships them.

Counts from either are marked estimated (``usage_source`` says which): a tokenize route
counts the text but not the chat template's tokens around it. Cost is unknown (None), not 0,
when the endpoint has no prices or a count is missing.
"""

import math
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import httpx

PROVIDER, TOKENIZER, ESTIMATE = "provider", "tokenizer", "estimate"
SOURCES = ((PROVIDER, "reported by the provider"), (TOKENIZER, "counted by the server's "
           "tokenize route"), (ESTIMATE, "estimated from the text (characters / 4)"))  # fmt: skip
TOKENIZE_TIMEOUT = 2.0  # seconds per tokenize request: a count is not worth a slow job
FORGET_AFTER = 600.0  # seconds after which an endpoint without a tokenize route is asked again

# (path below the server's root, the body for a text); tried in this order.
ROUTES = (
    ("/extras/tokenize", lambda model, text: {"input": text}),  # llama-cpp-python
    ("/tokenize", lambda model, text: {"content": text}),  # llama.cpp
    ("/tokenize", lambda model, text: {"model": model, "prompt": text}),  # vLLM
)


@dataclass(frozen=True)
class Counted:
    prompt_tokens: int | None
    completion_tokens: int | None
    source: str


_routes: dict[str, tuple[int | None, float]] = {}  # base URL -> (index in ROUTES, when)
_routes_lock = threading.Lock()


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def _tokenize_at(url: str, body: dict, key: str) -> int | None:
    try:
        response = httpx.post(
            url, json=body, timeout=TOKENIZE_TIMEOUT, headers={"Authorization": f"Bearer {key}"}
        )
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("count"), int):
        return data["count"]
    tokens = data.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


def _tokenize(endpoint, key: str, text: str) -> int | None:
    """The server's own count of a text's tokens, or None when it offers no way to count."""
    root = _root(endpoint.base_url)
    with _routes_lock:
        known, when = _routes.get(endpoint.base_url, (None, 0.0))
    if known is not None:
        path, body = ROUTES[known]
        return _tokenize_at(root + path, body(endpoint.model, text), key)
    if when and time.monotonic() - when < FORGET_AFTER:
        return None  # asked lately: it has none
    for index, (path, body) in enumerate(ROUTES):
        count = _tokenize_at(root + path, body(endpoint.model, text), key)
        if count is not None:
            with _routes_lock:
                _routes[endpoint.base_url] = (index, time.monotonic())
            return count
    with _routes_lock:
        _routes[endpoint.base_url] = (None, time.monotonic())
    return None


def count_locally(endpoint, *, key: str, prompt: str, completion: str) -> Counted:
    """Count the tokens of a call whose provider reported none."""
    prompt_tokens = _tokenize(endpoint, key, prompt)
    completion_tokens = _tokenize(endpoint, key, completion) if prompt_tokens is not None else None
    if prompt_tokens is not None and completion_tokens is not None:
        return Counted(prompt_tokens, completion_tokens, TOKENIZER)
    return Counted(estimate_tokens(prompt), estimate_tokens(completion), ESTIMATE)


def has_prices(endpoint) -> bool:
    return bool(endpoint.price_input_per_million or endpoint.price_output_per_million)


def cost_added(so_far: Decimal | None, endpoint, result) -> Decimal | None:
    """What a job has cost after one more answer; None while nothing could be priced."""
    if not has_prices(endpoint) or result.prompt_tokens is None or result.completion_tokens is None:
        return so_far
    return (so_far or Decimal(0)) + endpoint.cost(result.prompt_tokens, result.completion_tokens)


def usage_fields(result) -> dict:
    """The trace's fields that say how its token counts were obtained."""
    return {"usage_source": result.usage_source, "usage_estimated": result.usage_source != PROVIDER}
