from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404  # a malformed id is a 404 too
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.roles import HasRole, Role
from expansion.api import (
    TraceListSerializer,
    TraceSerializer,
    TraceViewSet,
    filter_parameters,
    valid_filters,
)
from expansion.models import LLMEndpoint, PromptVersion, Trace

from . import services
from .filters import QueueFilterForm, ReviewFilterForm
from .models import Decision, Reason, ReviewDecision, TraceReview
from .selectors import QueuePaginator, review_queue, traces_reviewed, with_review_state


def queue_filters(params) -> dict:
    """The review queue's filters from request parameters; a 400 naming each refused one."""
    return valid_filters(QueueFilterForm.bind(params))


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

    @extend_schema(parameters=filter_parameters(QueueFilterForm))
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
        queryset=PromptVersion.objects.all(), required=False, help_text="For reexpand.",
        error_messages={"incorrect_type": "Choose a prompt version by its id (a number).",
                        "does_not_exist": "There is no prompt version {pk_value}."},
    )  # fmt: skip
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=LLMEndpoint.objects.filter(is_active=True), required=False,
        help_text="For reexpand.",
        error_messages={"incorrect_type": "Choose an endpoint by its id (a number).",
                        "does_not_exist": "There is no active endpoint {pk_value}."},
    )  # fmt: skip

    def decision_arguments(self) -> dict:
        """The validated values as ``services.review_decide`` takes them (page and API)."""
        values = self.validated_data
        return {
            "decision": values["decision"], "reason": values.get("reason", ""),
            "comment": values.get("comment", ""),
            "edited_thought": values.get("edited_thought", ""),
            "edited_solution": values.get("edited_solution", ""),
            "prompt": values.get("prompt_version"), "endpoint": values.get("endpoint"),
        }  # fmt: skip


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
        try:
            decision = services.review_decide(
                trace_id=pk, reviewer=request.user, **data.decision_arguments()
            )
        except services.OwnAnnotation as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.ReviewRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


class ReviewStateSerializer(serializers.Serializer):
    """Where a trace stands in review."""

    # Read from the annotations of selectors.with_review_state: no query per trace.

    status = serializers.ChoiceField(choices=TraceReview.Status.choices, source="review_status",
                                     help_text="pending until a decision.")  # fmt: skip
    approvals = serializers.IntegerField(source="review_approvals")
    rank = serializers.IntegerField(
        source="review_rank", allow_null=True, help_text="1 = the best of its annotation's traces."
    )
    edited = serializers.BooleanField(
        source="review_edited", help_text="A reviewer edited the thought or solution."
    )

    def get_attribute(self, instance):
        # Only a succeeded trace is reviewed: a queued, running or failed job has no review.
        return instance if instance.status == Trace.Status.SUCCEEDED else None


def _with_review(serializer: type[serializers.ModelSerializer]) -> type:
    """Expansion's trace serializer with the trace's ``review`` added."""

    class Reviewed(serializer):
        review = ReviewStateSerializer(
            source="*", read_only=True, allow_null=True,
            help_text="null while the job has not succeeded.",
        )  # fmt: skip

        class Meta(serializer.Meta):
            fields = [*serializer.Meta.fields, "review"]
            read_only_fields = fields

    Reviewed.__name__ = Reviewed.__qualname__ = f"Reviewed{serializer.__name__}"
    return Reviewed


ReviewedTraceListSerializer = _with_review(TraceListSerializer)
ReviewedTraceSerializer = _with_review(TraceSerializer)


class DecisionRecordSerializer(DecisionSerializer):
    reviewer = serializers.IntegerField(source="reviewer_id")
    reviewer_username = serializers.CharField(source="reviewer.username")


@extend_schema_view(list=extend_schema(parameters=filter_parameters(ReviewFilterForm)))
class ReviewedTraceViewSet(TraceViewSet):
    """Expansion jobs and their traces with their review (reviewers and admins).

    Curation extends expansion's trace API here (the URL is registered with this class),
    so that expansion never imports curation.
    """

    filter_form = ReviewFilterForm

    def get_serializer_class(self):
        if self.action == "list":
            return ReviewedTraceListSerializer
        return ReviewedTraceSerializer if self.action == "retrieve" else TraceListSerializer

    def get_queryset(self):
        return with_review_state(super().get_queryset())

    @staticmethod
    def select(**filters) -> QuerySet[Trace]:
        return traces_reviewed(**filters)

    @extend_schema(responses=DecisionRecordSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def decisions(self, request, pk=None):
        """The trace's review decisions, oldest first (append-only: never changed)."""
        trace = get_object_or_404(Trace.objects.only("pk"), pk=pk)
        decisions = trace.decisions.select_related("reviewer").order_by("created_at", "pk")
        return Response(DecisionRecordSerializer(decisions, many=True).data)
