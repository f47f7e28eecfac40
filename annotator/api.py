from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import ScopedRateThrottle

from .forms import ProblemFilterForm
from .models import Problem
from .roles import HasRole, Role
from .selectors import ANNOTATION_STATUSES, problem_list


class ProblemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Problem
        fields = [
            "id", "source", "external_id", "statement", "reference_solution",
            "reference_answer", "subject", "level", "metadata", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Text in the statement or id."),
            OpenApiParameter("source", str),
            OpenApiParameter("subject", str),
            OpenApiParameter("level", int),
            OpenApiParameter("status", str, enum=list(ANNOTATION_STATUSES)),
        ]
    )
)
class ProblemViewSet(viewsets.ReadOnlyModelViewSet):
    """The problem bank (reviewers and admins)."""

    serializer_class = ProblemSerializer
    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    def get_queryset(self):
        if self.action != "list":
            return Problem.objects.all()
        form = ProblemFilterForm(self.request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors)
        return problem_list(**form.selector_kwargs())


class TokenView(ObtainAuthToken):
    """Exchange a username and password for an API token."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
