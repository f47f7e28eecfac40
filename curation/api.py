from datetime import UTC, datetime, time

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.roles import HasRole, Role
from expansion.api import TraceListSerializer
from expansion.models import LLMEndpoint, PromptVersion, Trace

from . import services
from .models import Decision, Reason, ReviewDecision, TraceReview
from .selectors import QueuePaginator, review_queue

MAX_ID = 2**63 - 1
QUEUE_PARAMETERS = [
    OpenApiParameter("checks", str, many=True, enum=list(Trace.FLAGS),
                     description="Only traces flagged by all of these checks."),
    OpenApiParameter("subject", str),
    OpenApiParameter("level", int),
    OpenApiParameter("endpoint", int),
    OpenApiParameter("prompt", int),
    OpenApiParameter("annotator", int),
    OpenApiParameter("since", str, description="YYYY-MM-DD"),
    OpenApiParameter("until", str, description="YYYY-MM-DD (exclusive)"),
    OpenApiParameter("q", str, description="Text the thought contains, e.g. wait."),
]  # fmt: skip


class QueueFilterSerializer(serializers.Serializer):
    checks = serializers.ListField(child=serializers.ChoiceField(choices=list(Trace.FLAGS)),
                                   required=False)  # fmt: skip
    subject = serializers.CharField(required=False, allow_blank=True)
    level = serializers.IntegerField(required=False, min_value=0, max_value=32767)
    endpoint = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    prompt = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    annotator = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)


def queue_filters(params) -> dict:
    data = {key: params.get(key) for key in params if key != "checks" and key != "page"}
    data = {key: value for key, value in data.items() if value not in (None, "")}
    if params.getlist("checks"):
        data["checks"] = params.getlist("checks")
    filters = QueueFilterSerializer(data=data)
    filters.is_valid(raise_exception=True)
    values = dict(filters.validated_data)
    for key in ("since", "until"):
        if key in values:
            values[key] = datetime.combine(values[key], time.min, tzinfo=UTC)
    if "q" in values:
        values["text"] = values.pop("q")
    return values


class QueuePagination(PageNumberPagination):
    """Pages of 50; a page's traces are read without their long texts."""

    django_paginator_class = QueuePaginator


class ReviewQueueView(generics.ListAPIView):
    """Traces awaiting review, oldest first (reviewers and admins; never your own).

    The ``count`` of a query is kept 10 seconds, so it may lag the results that long.
    """

    serializer_class = TraceListSerializer
    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]
    pagination_class = QueuePagination

    @extend_schema(parameters=QUEUE_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return review_queue(reviewer=self.request.user, **queue_filters(self.request.query_params))


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[d for d in Decision.values if d != Decision.UNDO])
    reason = serializers.ChoiceField(choices=[r for r in Reason.values if r], required=False,
                                     help_text="Required for reject.")  # fmt: skip
    # The review page's decide view validates with this serializer too: one limit per field.
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=ReviewDecision.COMMENT_MAX_CHARS
    )
    edited_thought = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        max_length=TraceReview.EDITED_THOUGHT_MAX_CHARS,
    )  # fmt: skip
    edited_solution = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        max_length=TraceReview.EDITED_SOLUTION_MAX_CHARS,
    )  # fmt: skip
    prompt_version = serializers.PrimaryKeyRelatedField(
        queryset=PromptVersion.objects.all(), required=False, help_text="For reexpand."
    )
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=LLMEndpoint.objects.filter(is_active=True), required=False,
        help_text="For reexpand.",
    )  # fmt: skip


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trace = serializers.IntegerField(source="trace_id")
    decision = serializers.CharField()
    reason = serializers.CharField()
    comment = serializers.CharField()
    edited = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class TraceReviewView(APIView):
    """Decide on a trace: approve (optionally with edits), reject, return or re-expand."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(request=ReviewSerializer, responses={201: DecisionSerializer})
    def post(self, request, pk: int):
        get_object_or_404(Trace.objects.only("pk"), pk=pk)
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            decision = services.review_decide(
                trace_id=pk, reviewer=request.user, decision=values["decision"],
                reason=values.get("reason", ""), comment=values.get("comment", ""),
                edited_thought=values.get("edited_thought", ""),
                edited_solution=values.get("edited_solution", ""),
                prompt=values.get("prompt_version"), endpoint=values.get("endpoint"),
            )  # fmt: skip
        except services.OwnAnnotation as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)
