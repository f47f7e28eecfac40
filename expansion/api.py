from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.models import Annotation
from annotator.roles import HasRole, Role

from .models import LLMEndpoint, PromptVersion, Trace
from .services import trace_cancel, traces_request

LIST_FIELDS = [
    "id", "annotation", "annotation_version", "prompt", "endpoint", "params", "sample_index",
    "is_simulated", "status", "attempts", "error_kind", "error_message", "progress_tokens",
    "finish_reason", "model_reported", "prompt_tokens", "completion_tokens", "usage_estimated",
    "usage_source", "cost", "latency_ms", "checks", "created_at", "started_at", "finished_at",
]  # fmt: skip


class TraceListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = LIST_FIELDS
        read_only_fields = fields


class TraceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = [
            *LIST_FIELDS,
            "thought",
            "solution",
            "reasoning",
            "content",
            "request",
            "response",
        ]
        read_only_fields = fields


class CancelRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.ChoiceField(choices=Trace.Status.choices)


MAX_ID = 2**63 - 1
FILTERS = {"status": "status", "annotation": "annotation_id", "endpoint": "endpoint_id",
           "prompt": "prompt_id"}  # fmt: skip


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(Trace.Status.values)),
            OpenApiParameter("annotation", int),
            OpenApiParameter("endpoint", int),
            OpenApiParameter("prompt", int, description="Prompt version id."),
        ]
    )
)
class TraceViewSet(viewsets.ReadOnlyModelViewSet):
    """Expansion jobs and their traces (reviewers and admins)."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]
    ordering_fields = ["created_at", "finished_at", "completion_tokens", "cost", "status"]

    def get_serializer_class(self):
        return TraceListSerializer if self.action == "list" else TraceSerializer

    def get_queryset(self):
        traces = Trace.objects.order_by("-created_at", "-pk")
        if self.action != "list":
            return traces
        traces = traces.defer(*Trace.LONG_TEXTS)
        errors = {}
        for param, field in FILTERS.items():
            value = self.request.query_params.get(param)
            if not value:
                continue
            if param == "status" and value not in Trace.Status.values:
                errors[param] = f"Must be one of {', '.join(Trace.Status.values)}."
            elif param != "status" and not (value.isdigit() and int(value) <= MAX_ID):
                errors[param] = "Must be an id (a whole number)."
            else:
                traces = traces.filter(**{field: value})
        if errors:
            raise serializers.ValidationError(errors)
        return traces

    @extend_schema(request=None, responses={200: TraceListSerializer, 409: CancelRefusedSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running job. A running one stops at its next progress save
        (within about a second) and is never retried; a finished one is refused with 409."""
        trace = self.get_object()
        if not trace_cancel(trace_id=trace.pk):
            trace.refresh_from_db(fields=["status"])
            detail = (f"Trace {trace.pk} is {trace.status}: only queued or running jobs can "
                      "be cancelled.")  # fmt: skip
            return Response({"detail": detail, "status": trace.status}, status.HTTP_409_CONFLICT)
        trace.refresh_from_db()
        return Response(TraceListSerializer(trace).data)


class ExpandSerializer(serializers.Serializer):
    prompt_version = serializers.PrimaryKeyRelatedField(
        queryset=PromptVersion.objects.all(), required=False, help_text="Default: the active one."
    )
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=LLMEndpoint.objects.filter(is_active=True), required=False,
        help_text="Default: the endpoint marked default, else the environment's (or the "
        "simulated one).",
    )  # fmt: skip
    samples = serializers.IntegerField(min_value=1, max_value=16, default=1)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_tokens = serializers.IntegerField(min_value=16, max_value=200_000, required=False)


class ExpandView(APIView):
    """Queue more expansions of a submitted annotation (reviewers and admins)."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(
        request=ExpandSerializer,
        responses={
            202: inline_serializer(
                "ExpandAccepted",
                {"job_ids": serializers.ListField(child=serializers.IntegerField())},
            )
        },
    )
    def post(self, request, pk: int):
        annotation = get_object_or_404(Annotation.objects.select_related("problem"), pk=pk)
        data = ExpandSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if annotation.status != Annotation.Status.SUBMITTED:
            return Response(
                {"detail": "Only submitted annotations can be expanded."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        values = data.validated_data
        traces = traces_request(
            annotation=annotation,
            samples=values["samples"],
            prompt=values.get("prompt_version"),
            endpoint=values.get("endpoint"),
            overrides={key: values.get(key) for key in ("temperature", "top_p", "max_tokens")},
            requested_by=request.user,
            extra=True,
        )
        return Response({"job_ids": [t.pk for t in traces]}, status=status.HTTP_202_ACCEPTED)
