import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotator.models import Annotation, Problem
from annotator.roles import Role

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get_or_create(name=Role(extracted))[0])
            self.is_staff = self.is_superuser = extracted == Role.ADMIN
        self.save()


class ProblemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Problem

    source = "test"
    external_id = factory.Sequence(lambda n: f"p{n:05d}")
    statement = factory.Sequence(lambda n: f"Compute $x_{n}$ where $x_{n} = {n} + 1$.")
    reference_solution = "Add one."
    reference_answer = factory.Sequence(lambda n: str(n + 1))
    subject = "Algebra"
    level = 2


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    problem = factory.SubFactory(ProblemFactory)
    annotator = factory.SubFactory(UserFactory, role=Role.ANNOTATOR)


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "expansion.LLMEndpoint"
        django_get_or_create = ["name"]

    name = "test-endpoint"
    base_url = "http://127.0.0.1:9/v1"
    model = "test-model"


class TraceFactory(factory.django.DjangoModelFactory):
    """A succeeded trace of a submitted annotation."""

    class Meta:
        model = "expansion.Trace"

    annotation = factory.SubFactory(AnnotationFactory, status="submitted")
    annotation_version = 1
    record = factory.LazyAttribute(lambda t: {"steps": t.annotation.steps, "final_answer": "4"})
    prompt = factory.LazyFunction(lambda: __import__("expansion.prompts").prompts.prompt_active())
    endpoint = factory.SubFactory(EndpointFactory)
    params = {"model": "test-model", "temperature": 0.7}
    sample_index = factory.Sequence(lambda n: n)
    idempotency_key = factory.Sequence(lambda n: f"key-{n:08d}")
    status = "succeeded"
    thought = "Hmm. Wait, let me check: 3+3=6, not 8. So x=4."
    solution = "x = \\boxed{4}"
    completion_tokens = 1600
    checks = {"matches_reference": True, "coverage_mean": 1.0}


SOLVE_INSTRUCTIONS = (
    "Solve the problem. Think it through at length inside <think> ... </think>, then give the "
    "solution with the final answer in \\boxed{{}}.\n\nProblem: {problem}"
)


class SolvePromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "expansion.SolvePrompt"
        skip_postgeneration_save = True

    name = "solve"
    version = factory.Sequence(lambda n: n + 100)
    system = "You are a careful mathematician."
    instructions = SOLVE_INSTRUCTIONS
    thought_format = "think"

    @factory.post_generation
    def hashed(self, create, extracted, **kwargs):
        self.content_hash = self.compute_hash()
        if create:
            self.save(update_fields=["content_hash"])


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "expansion.RolloutCampaign"

    name = factory.Sequence(lambda n: f"round-{n}")
    endpoint = factory.SubFactory(EndpointFactory)
    prompt = factory.SubFactory(SolvePromptFactory)
    samples_per_problem = 4


class SampleFactory(factory.django.DjangoModelFactory):
    """A finished, verified sample (correct unless told otherwise)."""

    class Meta:
        model = "expansion.RolloutSample"

    campaign = factory.SubFactory(CampaignFactory)
    problem = factory.SubFactory(ProblemFactory)
    sample_index = factory.Sequence(lambda n: n % 256)
    endpoint = factory.LazyAttribute(lambda s: s.campaign.endpoint)
    params = {"model": "test-model", "temperature": 0.7, "top_p": 0.95, "max_tokens": 4096}
    idempotency_key = factory.Sequence(lambda n: f"sample-{n:08d}")
    status = "succeeded"
    thought = "Let me add one. Wait, check: yes."
    solution = factory.LazyAttribute(lambda s: f"So the answer is \\boxed{{{s.answer}}}.")
    answer = factory.LazyAttribute(lambda s: s.problem.reference_answer)
    reference_answer = factory.LazyAttribute(lambda s: s.problem.reference_answer)
    verdict = "correct"
    completion_tokens = 1200


class DifficultyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "expansion.ProblemDifficulty"

    problem = factory.SubFactory(ProblemFactory)
    campaign = factory.SubFactory(CampaignFactory)
    samples = 16
    verified = 16
    correct = 8
    pass_rate = factory.LazyAttribute(lambda d: d.correct / d.verified if d.verified else None)
