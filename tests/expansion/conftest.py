import pytest
from django.conf import settings

from annotator import services as annotator_services
from devtools.simulator import SimulatedLLM
from expansion import limiter as limiter_module
from expansion.limiter import _LocalLimiter, _RedisLimiter
from expansion.models import LLMEndpoint
from tests.factories import ProblemFactory

STEPS = [
    {
        "kind": "attempt",
        "text": "Guess x equals three since three plus three",
        "notes": ["Doubling"],
    },
    {"kind": "reflection", "text": "Three plus three gives six, not eight", "notes": []},
    {"kind": "correction", "text": "Choose four: four plus four equals eight", "notes": []},
]


@pytest.fixture
def simulator():
    with SimulatedLLM(seconds_per_token=0.0002, target_tokens=300, chunk_interval=0.01) as sim:
        yield sim


@pytest.fixture
def endpoint(db, simulator):
    return LLMEndpoint.objects.create(
        name="sim", base_url=simulator.base_url, model="simulated-journey", is_simulated=True,
        max_in_flight=4, max_tokens=4000, timeout_seconds=5,
        price_input_per_million="1.00", price_output_per_million="2.00",
    )  # fmt: skip


@pytest.fixture
def submitted(db, annotator_user, settings, endpoint):
    """A submitted annotation; its expansion goes to the simulator through the env default."""
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    settings.LLM_SIMULATOR_URL = endpoint.base_url
    ProblemFactory(statement="Find $x$ with $x+x=8$.", reference_answer="4")
    draft = annotator_services.annotation_claim(annotator=annotator_user)
    annotator_services.annotation_save(
        annotation_id=draft.pk, user=annotator_user, base_version=1, steps=STEPS, final_answer="4"
    )
    return annotator_services.annotation_submit(annotation_id=draft.pk, user=annotator_user)


@pytest.fixture(params=["local"] + (["redis"] if settings.REDIS_URL else []))
def shared(request, monkeypatch):
    """The shared limiter, on Redis when REDIS_URL is set and in-process otherwise."""
    if request.param == "redis":
        instance = _RedisLimiter(settings.REDIS_URL)
        instance.redis.delete(*[k for k in instance.redis.keys("journey:endpoint:*")] or ["x"])
    else:
        instance = _LocalLimiter()
    monkeypatch.setattr(limiter_module, "_limiter", instance)
    yield instance
    if request.param == "redis":  # a lowered slot count must not outlive the test's endpoints
        instance.redis.delete(*[k for k in instance.redis.keys("journey:endpoint:*")] or ["x"])
