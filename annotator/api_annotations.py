from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from . import services
from .models import STEP_KINDS, Annotation, Problem
from .roles import HasRole, Role
from .selectors import annotations_visible_to
from .steps import StepsInvalid, clean_final_answer, clean_steps


class ProblemBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Problem
        fields = ["id", "source", "external_id", "statement", "subject", "level"]
        read_only_fields = fields


# The shape of a step in answers and in the schema; steps sent in are checked by StepsField.
class StepSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=STEP_KINDS)
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)
    notes = serializers.ListField(child=serializers.CharField(allow_blank=True), default=list)


def _checked(clean, value):
    """``clean(value)``, its StepsInvalid messages turned into the field's errors."""
    try:
        return clean(value)
    except StepsInvalid as exc:
        raise serializers.ValidationError(exc.messages) from exc


@extend_schema_field(StepSerializer(many=True))
class StepsField(serializers.Field):
    """Steps checked by ``annotator.steps.clean_steps``, as the editor page and the services
    check them, so that a bad step gets the same message everywhere."""

    def to_internal_value(self, data):
        return _checked(clean_steps, data)

    def to_representation(self, value):
        return value


class AnnotationSerializer(serializers.ModelSerializer):
    problem = ProblemBriefSerializer(read_only=True)
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    # Stored steps went through clean_steps: given back as they are (a serializer per step
    # cost a save of 200 steps about as much as everything else in it).
    steps = StepsField(read_only=True)

    class Meta:
        model = Annotation
        fields = [
            "id", "problem", "annotator", "status", "version", "steps", "final_answer",
            "time_spent_seconds", "lease_expires_at", "answer_check", "answer_timed_out",
            "mismatch_confirmed", "return_comment", "created_at", "updated_at", "submitted_at",
        ]  # fmt: skip
        read_only_fields = fields


class AnnotationSaveSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text="The version this change is based on."
    )
    steps = StepsField(required=False)
    final_answer = serializers.CharField(allow_blank=True, trim_whitespace=False, required=False)
    elapsed_seconds = serializers.IntegerField(
        min_value=0, required=False, default=0, help_text="Seconds of work since the last save."
    )

    def validate_final_answer(self, value: str) -> str:
        return _checked(clean_final_answer, value)


class AnnotationSubmitSerializer(serializers.Serializer):
    confirm_mismatch = serializers.BooleanField(
        default=False, help_text="Submit even though the answer differs from the reference."
    )


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = AnnotationSerializer(required=False, help_text="Absent when it was submitted.")


class SubmitErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    errors = serializers.ListField(child=serializers.CharField(), required=False)


def _conflict(exc: services.VersionConflict) -> Response:
    return Response(
        {"detail": str(exc), "current": AnnotationSerializer(exc.current).data},
        status=status.HTTP_409_CONFLICT,
    )


class AnnotationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Annotations: annotators see and change their own; reviewers and admins read all."""

    serializer_class = AnnotationSerializer
    permission_classes = [HasRole(Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN)]
    http_method_names = ["get", "post", "patch", "head", "options"]
    ordering_fields = ["updated_at", "created_at", "submitted_at", "status"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Annotation.objects.none()
        annotations = annotations_visible_to(self.request.user).order_by("-updated_at", "-pk")
        wanted = self.request.query_params.get("status")
        if self.action == "list" and wanted:
            if wanted not in Annotation.Status.values:
                raise serializers.ValidationError(
                    {"status": f"Must be one of {', '.join(Annotation.Status.values)}."}
                )
            annotations = annotations.filter(status=wanted)
        return annotations

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(Annotation.Status.values))]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=AnnotationSaveSerializer,
        responses={
            200: AnnotationSerializer,
            400: OpenApiResponse(description="Malformed steps, with a message per step."),
            409: ConflictSerializer,
        },
    )
    def partial_update(self, request, pk=None):
        """Save a new version. A save based on a stale version is refused with 409."""
        annotation = self.get_object()
        data = AnnotationSaveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            saved = services.annotation_save(
                annotation_id=annotation.pk,
                user=request.user,
                base_version=values["version"],
                steps=values.get("steps", annotation.steps),
                final_answer=values.get("final_answer", annotation.final_answer),
                elapsed_seconds=values["elapsed_seconds"],
                loaded=annotation,
            )
        except services.VersionConflict as exc:
            return _conflict(exc)
        except services.AnnotationLocked as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(AnnotationSerializer(saved).data)

    @extend_schema(
        request=None,
        responses={201: AnnotationSerializer, 204: OpenApiResponse(description="Nothing left.")},
    )
    @action(detail=False, methods=["post"], permission_classes=[HasRole(Role.ANNOTATOR)])
    def claim(self, request):
        """Lease the next problem that needs an annotation and open a draft for it."""
        annotation = services.annotation_claim(annotator=request.user)
        if annotation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        annotation = annotations_visible_to(request.user).get(pk=annotation.pk)
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AnnotationSubmitSerializer,
        responses={
            200: AnnotationSerializer,
            400: OpenApiResponse(
                response=SubmitErrorSerializer,
                description="Why it cannot be submitted (`code` and `errors`), or field errors.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Submit the latest saved version for expansion and review."""
        annotation = self.get_object()
        data = AnnotationSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            submitted = services.annotation_submit(
                annotation_id=annotation.pk,
                user=request.user,
                confirm_mismatch=data.validated_data["confirm_mismatch"],
            )
        except services.SubmissionInvalid as exc:
            return Response(
                {"detail": str(exc), "code": "invalid", "errors": exc.messages},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except services.AnswerMismatch as exc:
            return Response(
                {"detail": str(exc), "code": "answer_mismatch", "errors": [str(exc)]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except services.AnnotationLocked as exc:
            return Response(
                {"detail": str(exc), "code": "locked", "errors": [str(exc)]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(AnnotationSerializer(submitted).data)

    @extend_schema(request=None, responses={200: AnnotationSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Give the problem back to the pool; the draft stays yours."""
        annotation = self.get_object()
        released = services.annotation_release(annotation_id=annotation.pk, user=request.user)
        return Response(AnnotationSerializer(released).data)
