"""Asking the judge through the API: one trace, or the review queue's filtered set."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.roles import HasRole, OwnAnnotation, Role
from expansion.api import filter_parameters
from expansion.models import LLMEndpoint, Trace

from ..filters import QueueFilterForm
from ..models import JudgeJob, JudgePrompt
from ..selectors import review_queue
from . import services

JUDGE_RUN_MAX = 1000  # traces per bulk request


class JudgeRequestSerializer(serializers.Serializer):
    prompt = serializers.PrimaryKeyRelatedField(
        queryset=JudgePrompt.objects.all(), required=False,
        help_text="A judge prompt version; the active one by default.",
        error_messages={"incorrect_type": "Choose a judge prompt by its id (a number).",
                        "does_not_exist": "There is no judge prompt {pk_value}."},
    )  # fmt: skip
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=LLMEndpoint.objects.filter(is_active=True), required=False,
        help_text="The endpoint the judge runs on; the default endpoint by default.",
        error_messages={"incorrect_type": "Choose an endpoint by its id (a number).",
                        "does_not_exist": "There is no active endpoint {pk_value}."},
    )  # fmt: skip


class JudgeJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = JudgeJob
        fields = ["id", "trace", "prompt", "endpoint", "status", "attempts", "error_kind",
                  "error_message", "cost", "created_at", "finished_at"]  # fmt: skip
        read_only_fields = fields


class JudgeQueuedSerializer(serializers.Serializer):
    jobs = serializers.ListField(child=serializers.IntegerField(), help_text="Judge job ids.")
    created = serializers.IntegerField(help_text="How many of them are new.")
    skipped = serializers.DictField(child=serializers.CharField(), required=False,
                                    help_text="Trace id -> why no job was queued.")  # fmt: skip


class TraceJudgeView(APIView):
    """Ask the judge to rate the trace's steps (once per thought, prompt and endpoint: asking
    again gives the job already made)."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(request=JudgeRequestSerializer, responses={202: JudgeQueuedSerializer})
    def post(self, request, pk: int):
        get_object_or_404(Trace.objects.only("pk"), pk=pk)
        data = JudgeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job, created = services.judge_request(trace_id=pk, requested_by=request.user,
                                                  **data.validated_data)  # fmt: skip
        except OwnAnnotation as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.JudgeRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"jobs": [job.pk], "created": int(created)},
                        status=status.HTTP_202_ACCEPTED)  # fmt: skip


class JudgeRunsView(APIView):
    """Ask the judge about every trace of the review queue the filters select (at most
    1,000 a request, oldest first; never your own)."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(
        request=JudgeRequestSerializer, parameters=filter_parameters(QueueFilterForm),
        responses={202: JudgeQueuedSerializer},
    )  # fmt: skip
    def post(self, request):
        from ..api import queue_filters

        data = JudgeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filters = queue_filters(request.query_params)
        traces = review_queue(reviewer=request.user, **filters).values_list("pk", flat=True)
        jobs, created, skipped = [], 0, {}
        for trace_id in list(traces[:JUDGE_RUN_MAX]):
            try:
                job, new = services.judge_request(trace_id=trace_id, requested_by=request.user,
                                                  **data.validated_data)  # fmt: skip
            except (OwnAnnotation, services.JudgeRefused) as exc:
                skipped[str(trace_id)] = str(exc)
                continue
            jobs.append(job.pk)
            created += int(new)
        return Response({"jobs": jobs, "created": created, "skipped": skipped},
                        status=status.HTTP_202_ACCEPTED)  # fmt: skip
