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
