from pathlib import Path

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from .forms import ProblemFilterForm
from .models import ApiToken, Problem
from .problem_import import ImportFileError, problems_import, uploaded_file
from .roles import HasRole, Role
from .selectors import ANNOTATION_STATUSES, problem_list
from .tokens import HashedTokenAuthentication, api_token_issue

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class ProblemSerializer(serializers.ModelSerializer):
    contaminated_by = serializers.SerializerMethodField(
        help_text="Names of the registered benchmarks that contain this problem."
    )

    class Meta:
        model = Problem
        fields = [
            "id", "source", "external_id", "statement", "reference_solution",
            "reference_answer", "subject", "level", "metadata", "contaminated_by",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_contaminated_by(self, problem) -> list[str]:
        return [c.benchmark.name for c in problem.contaminations.all()]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Text in the statement or id."),
            OpenApiParameter("source", str),
            OpenApiParameter("subject", str),
            OpenApiParameter("level", int),
            OpenApiParameter("status", str, enum=list(ANNOTATION_STATUSES)),
            OpenApiParameter(
                "contamination",
                str,
                description="clean, contaminated (by any benchmark) or a benchmark's name.",
            ),
        ]
    )
)
class ProblemViewSet(viewsets.ReadOnlyModelViewSet):
    """The problem bank (reviewers and admins)."""

    serializer_class = ProblemSerializer
    permission_classes = [HasRole(Role.REVIEWER, Role.ADMIN)]
    ordering_fields = ["source", "external_id", "subject", "level", "created_at"]

    def get_queryset(self):
        if self.action != "list":
            return Problem.objects.prefetch_related("contaminations__benchmark")
        form = ProblemFilterForm(self.request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors)
        return problem_list(**form.selector_kwargs())


class ProblemImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSONL or CSV with MATH-500 fields, at most 50 MB.")
    source = serializers.CharField(max_length=100)
    dry_run = serializers.BooleanField(default=False)
    skip_invalid = serializers.BooleanField(default=False)

    def validate_file(self, upload):
        suffix = Path(upload.name).suffix.lower()
        if suffix not in {".jsonl", ".json", ".ndjson", ".csv"}:
            raise serializers.ValidationError("Upload a .jsonl or .csv file.")
        if upload.size > MAX_UPLOAD_BYTES:
            raise serializers.ValidationError("The file is larger than 50 MB; use the command.")
        return upload


class ImportReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    written = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    near_duplicates = serializers.IntegerField(
        help_text="Incoming rows (created or changed) that are near-duplicates of problems "
        "already in the bank."
    )
    contaminated = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Incoming rows that overlap each registered benchmark, by its name.",
    )


class ProblemImportView(viewsets.ViewSet):
    """Import problems from an uploaded file (admins)."""

    permission_classes = [HasRole(Role.ADMIN)]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ProblemImportSerializer},
        responses={
            200: ImportReportSerializer,
            400: OpenApiResponse(
                description="Field errors, or an import report whose `errors` name every bad "
                "row (line, field, reason); nothing was imported."
            ),
        },
    )
    def create(self, request):
        data = ProblemImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        with uploaded_file(upload) as path:
            try:
                report = problems_import(
                    path=path, source=data.validated_data["source"],
                    dry_run=data.validated_data["dry_run"],
                    skip_invalid=data.validated_data["skip_invalid"], file_name=upload.name,
                )  # fmt: skip
            except ImportFileError as exc:
                raise serializers.ValidationError({"file": [str(exc)]}) from exc
        body = {
            "rows": report.rows, "created": report.created, "updated": report.updated,
            "unchanged": report.unchanged, "skipped": report.skipped, "written": report.written,
            "errors": [str(error) for error in report.errors],
            "near_duplicates": report.near_duplicates, "contaminated": dict(report.contaminated),
        }  # fmt: skip
        failed = report.errors and not data.validated_data["skip_invalid"]
        return Response(body, status=status.HTTP_400_BAD_REQUEST if failed else status.HTTP_200_OK)


class TokenView(ObtainAuthToken):
    """Exchange a username and password for an API token; DELETE revokes the token used."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
    # ObtainAuthToken names its own parsers; take the project's (bounded JSON) instead.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    # POST needs no credentials; DELETE is authenticated by the token it revokes.
    authentication_classes = [HashedTokenAuthentication]

    @extend_schema(
        request=AuthTokenSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
        description="A new token (kept hashed; it expires after API_TOKEN_DAYS days). "
        "Send it as `Authorization: Token ...`.",
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"token": api_token_issue(user=serializer.validated_data["user"])})

    @extend_schema(request=None, responses={204: None}, description="Revoke the token sent.")
    def delete(self, request, *args, **kwargs):
        if not isinstance(request.auth, ApiToken):
            raise NotAuthenticated("Send the token to revoke as `Authorization: Token ...`.")
        ApiToken.objects.filter(pk=request.auth.pk).update(revoked_at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
