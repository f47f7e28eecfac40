"""The steps of a trace with every rating, and the caller's rating of one step."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.roles import HasRole, Role
from expansion.models import Trace

from ..judging.selectors import judgement, latest_judge_job
from ..models import Correctness, Faithfulness, StepRating
from . import services
from .selectors import lost_record_steps, trace_steps


class StepRatingSerializer(serializers.Serializer):
    rater = serializers.IntegerField(source="rater_id")
    rater_username = serializers.CharField(source="rater.username")
    correctness = serializers.IntegerField(allow_null=True, help_text="-1, 0 or 1; null: unrated.")
    faithfulness = serializers.CharField(help_text="A tag, or empty: untagged.")
    note = serializers.CharField()
    version = serializers.IntegerField(help_text="Send it back with the next save.")
    updated_at = serializers.DateTimeField()


class JudgeStepSerializer(serializers.Serializer):
    correctness = serializers.IntegerField()
    faithfulness = serializers.CharField()
    reason = serializers.CharField()


class TraceStepSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    start = serializers.IntegerField(help_text="Offset of the step's first character.")
    end = serializers.IntegerField(help_text="Offset just past its last character.")
    text = serializers.CharField()
    ratings = StepRatingSerializer(source="rating_list", many=True)
    judge = JudgeStepSerializer(allow_null=True, help_text="The judge's rating; null: none.")


class LostRecordStepSerializer(serializers.Serializer):
    record_step = serializers.IntegerField()
    rater = serializers.IntegerField(source="rater_id")
    rater_username = serializers.CharField(source="rater.username")


class JudgeStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    error_kind = serializers.CharField()
    error_message = serializers.CharField()
    prompt = serializers.CharField(source="prompt.__str__")
    model = serializers.CharField(source="endpoint.model")


class TraceStepsSerializer(serializers.Serializer):
    trace = serializers.IntegerField()
    unsplittable = serializers.BooleanField(help_text="Fewer than 2 steps.")
    judge_job = JudgeStateSerializer(allow_null=True, help_text="The latest judge job, if any.")
    judged_by = JudgeStateSerializer(
        allow_null=True, help_text="The judge job whose ratings the steps show."
    )
    steps = TraceStepSerializer(many=True)
    lost = LostRecordStepSerializer(many=True, help_text="Record steps marked lost.")


class RatingInputSerializer(serializers.Serializer):
    """One rater's rating of one step. The page's rating form validates with this too."""

    correctness = serializers.ChoiceField(
        choices=Correctness.values, allow_null=True, required=False, default=None,
        help_text="PRM800K's scale: 1 right and useful, 0 neutral, -1 wrong; null: unrated.",
    )  # fmt: skip
    faithfulness = serializers.ChoiceField(
        choices=["", *Faithfulness.values], allow_blank=True, required=False, default="",
        help_text="To the record: faithful, invented, early_fix, off_record; empty: untagged.",
    )  # fmt: skip
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 max_length=StepRating.NOTE_MAX_CHARS)  # fmt: skip
    version = serializers.IntegerField(
        min_value=0, help_text="The version this rating is based on: 0 for a first rating."
    )

    def values(self) -> services.RatingValues:
        data = self.validated_data
        correctness = data.get("correctness")
        return services.RatingValues(
            correctness=None if correctness in (None, "") else int(correctness),
            faithfulness=data.get("faithfulness", ""), note=data.get("note", ""),
        )  # fmt: skip


def _succeeded_trace(pk: int) -> Trace:
    return get_object_or_404(Trace.objects.select_related("annotation"), pk=pk)


class TraceStepsView(APIView):
    """The trace's steps (its thought's blank-line paragraphs) with every rating of each."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(responses=TraceStepsSerializer)
    def get(self, request, pk: int):
        trace = _succeeded_trace(pk)
        if trace.status != Trace.Status.SUCCEEDED:
            raise NotFound("Only a succeeded trace has steps.")
        split, steps = trace_steps(trace)
        steps = list(steps)
        judged = judgement(trace)
        for step in steps:
            step.judge = judged.by_step.get(step.pk) if judged else None
        data = {"trace": trace.pk, "unsplittable": split.unsplittable, "steps": steps,
                "judge_job": latest_judge_job(trace), "judged_by": judged.job if judged else None,
                "lost": list(lost_record_steps(trace))}  # fmt: skip
        return Response(TraceStepsSerializer(data).data)


CONFLICT = inline_serializer(
    "StepRatingConflict",
    {"detail": serializers.CharField(), "current": StepRatingSerializer(allow_null=True)},
)


class StepRatingView(APIView):
    """Save the caller's rating of step ``n``, based on the version it was read at."""

    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]

    @extend_schema(
        request=RatingInputSerializer,
        responses={
            200: StepRatingSerializer,
            409: OpenApiResponse(CONFLICT, description="Based on a stale version."),
        },
    )
    def put(self, request, pk: int, n: int):
        data = RatingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rating = services.step_rating_save(
                trace_id=pk, number=n, rater=request.user, values=data.values(),
                version=data.validated_data["version"],
            )  # fmt: skip
        except services.RaterRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.NoSuchStep as exc:
            raise NotFound(str(exc)) from exc
        except Trace.DoesNotExist as exc:
            raise NotFound("No such trace.") from exc
        except services.RatingConflict as exc:
            current = StepRatingSerializer(exc.current).data if exc.current else None
            return Response({"detail": str(exc), "current": current},
                            status=status.HTTP_409_CONFLICT)  # fmt: skip
        except services.RatingRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(StepRatingSerializer(rating).data)
