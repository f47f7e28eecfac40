"""The rollouts API: solve prompt versions and campaigns (admins create and steer them;
reviewers read them and their samples)."""

from django.db.models import Exists, OuterRef, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotator.roles import HasRole, Role

from ..models import LLMEndpoint, RolloutCampaign, RolloutSample, SolvePrompt
from .prompts import solve_prompt_create, solve_prompt_problems
from .services import (
    CampaignRefused,
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_resume,
    campaign_run,
    campaign_summaries,
    campaign_summary,
)

READERS = HasRole(Role.REVIEWER, Role.ADMIN)
ADMINS = HasRole(Role.ADMIN)


class SolvePromptSerializer(serializers.ModelSerializer):
    used = serializers.SerializerMethodField(help_text="A campaign sampled with this version.")

    class Meta:
        model = SolvePrompt
        fields = ["id", "name", "version", "system", "instructions", "thought_format",
                  "content_hash", "used", "created_at"]  # fmt: skip
        read_only_fields = ["id", "version", "content_hash", "used", "created_at"]

    def get_used(self, prompt) -> bool:
        used = getattr(prompt, "used_by_campaign", None)  # annotated on the lists
        return prompt.campaigns.exists() if used is None else used

    def validate(self, data):
        problems = solve_prompt_problems(SolvePrompt(**data))
        if problems:
            raise serializers.ValidationError(problems)
        return data


class SolvePromptViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """Solve prompt versions are immutable: posting creates the next version of that name.
    ``instructions`` holds ``{problem}`` and asks for the final answer in ``\\boxed{}``."""

    serializer_class = SolvePromptSerializer
    permission_classes = [ADMINS]
    queryset = SolvePrompt.objects.annotate(
        used_by_campaign=Exists(RolloutCampaign.objects.filter(prompt=OuterRef("pk")))
    ).order_by("name", "-version")

    def perform_create(self, serializer):
        serializer.instance = solve_prompt_create(**serializer.validated_data)


class CampaignFiltersSerializer(serializers.Serializer):
    """The problem-list filters that choose the campaign's problems (all problems if none)."""

    source = serializers.CharField(required=False, allow_blank=True)
    subject = serializers.CharField(required=False, allow_blank=True)
    level = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    status = serializers.CharField(required=False, allow_blank=True)


class CampaignListSerializer(serializers.ListSerializer):
    """A page of campaigns with their summaries counted for the whole page at once."""

    def to_representation(self, data):
        campaigns = list(data.all() if hasattr(data, "all") else data)
        self.context["summaries"] = campaign_summaries(campaigns)
        return super().to_representation(campaigns)


class CampaignSerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=LLMEndpoint.objects.all())
    prompt = serializers.PrimaryKeyRelatedField(
        queryset=SolvePrompt.objects.all(), required=False, allow_null=True,
        help_text="A solve prompt version; empty: the default one.",
    )  # fmt: skip
    filters = CampaignFiltersSerializer(required=False)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = RolloutCampaign
        fields = ["id", "name", "endpoint", "prompt", "samples_per_problem", "temperature",
                  "top_p", "max_tokens", "filters", "problems", "state", "summary",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "problems", "state", "summary", "created_at", "updated_at"]
        # The service says why a name is taken, in the same words as the command's.
        extra_kwargs = {"name": {"validators": []}}
        list_serializer_class = CampaignListSerializer

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_summary(self, campaign) -> dict:
        summaries = self.context.get("summaries") or {}
        return summaries.get(campaign.pk) or campaign_summary(campaign)


def _refused(error: CampaignRefused) -> Response:
    return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)


class CampaignViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """Rollout campaigns: N samples of a policy endpoint per problem of a filtered set, each
    sample a job on the engine, each finished one verified against the reference answer.
    Admins create, pause, resume, cancel and run them again; reviewers and admins read them."""

    serializer_class = CampaignSerializer
    queryset = RolloutCampaign.objects.select_related("endpoint", "prompt").order_by(
        "-created_at", "-pk"
    )

    def get_permissions(self):
        readers = self.action in ("list", "retrieve", "samples")
        return [(READERS if readers else ADMINS)()]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        filters = {k: v for k, v in dict(data.pop("filters", {}) or {}).items()
                   if v not in (None, "")}  # fmt: skip
        try:
            campaign = campaign_create(**data, filters=filters, user=request.user)
        except CampaignRefused as error:
            return _refused(error)
        body = self.get_serializer(campaign).data
        body["without_reference"] = campaign.without_reference
        return Response(body, status=status.HTTP_201_CREATED)

    def _steer(self, steer, extra) -> Response:
        campaign = self.get_object()
        try:
            count = steer(campaign_id=campaign.pk)
        except CampaignRefused as error:
            return _refused(error)
        campaign.refresh_from_db()
        return Response({**self.get_serializer(campaign).data, **extra(count)})

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Queued samples wait; running ones finish."""
        return self._steer(campaign_pause, extra=lambda _: {})

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """A paused campaign runs again; ``sent``: the queued samples sent to the workers."""
        return self._steer(campaign_resume, extra=lambda sent: {"sent": sent})

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Queued samples are cancelled, running ones stop; finished ones are kept."""
        return self._steer(campaign_cancel, extra=lambda cancelled: {"cancelled": cancelled})

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Send the samples not finished again; a finished campaign sends nothing (0)."""
        return self._steer(campaign_run, extra=lambda sent: {"sent": sent})

    @extend_schema(
        parameters=[
            OpenApiParameter("verdict", OpenApiTypes.STR, enum=RolloutSample.Verdict.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=RolloutSample.Status.values),
            OpenApiParameter("problem", OpenApiTypes.INT),
        ],
        responses=inline_serializer("RolloutSample", {
            "id": serializers.IntegerField(), "problem": serializers.IntegerField(),
            "sample_index": serializers.IntegerField(), "status": serializers.CharField(),
            "verdict": serializers.CharField(), "answer": serializers.CharField(),
            "reference_answer": serializers.CharField(),
            "completion_tokens": serializers.IntegerField(allow_null=True),
            "cost": serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True),
            "error_kind": serializers.CharField(), "error_message": serializers.CharField(),
            "flags": serializers.ListField(child=serializers.CharField()),
        }, many=True),
    )  # fmt: skip
    @action(detail=True, methods=["get"])
    def samples(self, request, pk=None):
        """The campaign's samples, by problem and sample index; filter by ``verdict``,
        ``status`` and ``problem``."""
        campaign = self.get_object()
        chosen = Q()
        for field, values in (("verdict", RolloutSample.Verdict.values),
                              ("status", RolloutSample.Status.values)):  # fmt: skip
            value = request.query_params.get(field)
            if value:
                if value not in values:
                    raise ValidationError({field: f"One of {', '.join(values)}."})
                chosen &= Q(**{field: value})
        problem = request.query_params.get("problem")
        if problem:
            if not problem.isdigit():
                raise ValidationError({"problem": "A problem id."})
            chosen &= Q(problem_id=int(problem))
        samples = campaign.samples.filter(chosen).order_by("problem_id", "sample_index")
        page = self.paginate_queryset(samples)
        return self.get_paginated_response([_sample_row(s) for s in page])


FLAGS = ("truncated", "repetition", "format", "no_reflection")


def _sample_row(sample: RolloutSample) -> dict:
    return {
        "id": sample.pk, "problem": sample.problem_id, "sample_index": sample.sample_index,
        "status": sample.status, "verdict": sample.verdict, "answer": sample.answer,
        "reference_answer": sample.reference_answer,
        "completion_tokens": sample.completion_tokens,
        "cost": None if sample.cost is None else str(sample.cost),
        "error_kind": sample.error_kind, "error_message": sample.error_message,
        "flags": [flag for flag in FLAGS if getattr(sample, f"flag_{flag}")],
    }  # fmt: skip
