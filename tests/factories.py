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
