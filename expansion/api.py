from django import forms
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
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

from .filters import TraceFilterForm
from .models import LLMBatch, LLMEndpoint, PromptVersion, Trace
from .selectors import traces_matching
from .services import trace_cancel, traces_request

LIST_FIELDS = [
    "id", "annotation", "annotation_version", "prompt", "endpoint", "params", "sample_index",
    "is_simulated", "status", "attempts", "error_kind", "error_message", "progress_tokens",
    "finish_reason", "model_reported", "prompt_tokens", "completion_tokens", "usage_estimated",
    "usage_source", "cost", "latency_ms", "checks", "created_at", "started_at", "finished_at",
    "batch",
]  # fmt: skip


class TraceListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = LIST_FIELDS
        read_only_fields = fields


class BatchStateSerializer(serializers.ModelSerializer):
    """The batch a job is in (or was last in), as the provider last reported it."""

    class Meta:
        model = LLMBatch
        fields = ["id", "provider_id", "status", "jobs", "request_counts", "error_message",
                  "created_at", "submitted_at", "polled_at", "ingested_at"]  # fmt: skip
        read_only_fields = fields


class TraceSerializer(serializers.ModelSerializer):
    batch_state = BatchStateSerializer(source="batch", read_only=True, allow_null=True)

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
            "batch_state",
        ]
        read_only_fields = fields


class CancelRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.ChoiceField(choices=Trace.Status.choices)


def filter_parameters(form_class: type[TraceFilterForm], *, skip=()) -> list[OpenApiParameter]:
    """The OpenAPI query parameters of a filter form: its fields, then its old names."""
    kinds = {forms.DateField: OpenApiTypes.DATE, forms.NullBooleanField: OpenApiTypes.BOOL,
             forms.IntegerField: OpenApiTypes.INT}  # fmt: skip
    parameters = []
    for name, field in form_class.base_fields.items():
        if name in skip:
            continue
        kind = next((k for cls, k in kinds.items() if isinstance(field, cls)), OpenApiTypes.STR)
        choices = [value for value, _ in getattr(field, "choices", []) if value != ""]
        description = " ".join(str(t) for t in (field.label or "", field.help_text) if t)
        if name == "endpoint":
            kind, description = OpenApiTypes.STR, "Endpoint id or name."
        parameters.append(OpenApiParameter(
            name, kind, many=name in form_class.LISTS, enum=choices or None,
            description=description,
        ))  # fmt: skip
    for old, new in form_class.ALIASES.items():
        if new not in skip:
            kind = next(p.type for p in parameters if p.name == new)
            parameters.append(OpenApiParameter(
                old, kind, many=new in form_class.LISTS, deprecated=True,
                description=f"Old name of {new}.",
            ))  # fmt: skip
    return parameters


def valid_filters(form: TraceFilterForm) -> dict:
    """The filters of a valid form; a 400 naming each refused one."""
    if not form.is_valid():
        raise serializers.ValidationError(form.errors)
    return form.filters()


@extend_schema_view(list=extend_schema(parameters=filter_parameters(TraceFilterForm)))
class TraceViewSet(viewsets.ReadOnlyModelViewSet):
    """Expansion jobs and their traces (reviewers and admins)."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]
    ordering_fields = ["created_at", "finished_at", "completion_tokens", "cost", "status"]
    filter_form = TraceFilterForm

    def get_serializer_class(self):
        return TraceListSerializer if self.action == "list" else TraceSerializer

    def get_queryset(self):
        if self.action != "list":
            return Trace.objects.select_related("batch").order_by("-created_at", "-pk")
        filters = valid_filters(self.filter_form.bind(self.request.query_params))
        traces = self.select(**filters)
        return traces.defer(*Trace.LONG_TEXTS).order_by("-created_at", "-pk")

    @staticmethod
    def select(**filters) -> QuerySet[Trace]:
        return traces_matching(**filters)

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
