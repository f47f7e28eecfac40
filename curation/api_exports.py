from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotator.forms import parse_level
from annotator.roles import HasRole, Role

from .exports import rollouts
from .exports.prm import LABELS, NEUTRAL
from .exports.records import FORMATS, PAIR_LAYOUTS, STATUSES, STYLES
from .exports.runs import DAYS, export_start
from .exports.writer import ExportError, check_sources, check_style, parse_splits
from .filters import BenchmarkNamesField
from .models import Export


class ExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Export
        fields = ["id", "format", "style", "system", "split", "seed", "filters", "status",
                  "counts", "files", "manifest", "error", "created_at", "finished_at"]  # fmt: skip
        read_only_fields = fields


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    style = serializers.ChoiceField(
        choices=STYLES, default="think-tags",
        help_text="reasoning-field is for Hugging Face datasets/TRL: no dataset_info.json "
                  "(LLaMA-Factory has no column for it); not with dpo.",
    )  # fmt: skip
    # The exports page validates with this serializer too: one limit per field.
    system = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=Export.SYSTEM_MAX_CHARS
    )
    split = serializers.CharField(
        default="train=1", help_text="e.g. train=0.95,test=0.05",
        max_length=Export._meta.get_field("split").max_length,
    )  # fmt: skip
    seed = serializers.IntegerField(default=0, min_value=-(2**31), max_value=2**31 - 1)
    status = serializers.ChoiceField(choices=STATUSES, default="approved")
    created_since = serializers.DateField(required=False, help_text="Created on or after.")
    created_until = serializers.DateField(required=False, help_text="Created before.")
    finished_since = serializers.DateField(required=False, help_text="Finished on or after.")
    finished_until = serializers.DateField(required=False, help_text="Finished before.")
    since = serializers.DateField(required=False, help_text="Deprecated: created_since.")
    until = serializers.DateField(required=False, help_text="Deprecated: created_until.")
    source = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS
    )
    subject = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS
    )
    level = serializers.CharField(required=False, allow_blank=True, help_text="5 or Level 5.")
    prompt = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    endpoint = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS
    )
    model = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS
    )
    min_tokens = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    checks_passed = serializers.BooleanField(default=False)
    include_simulated = serializers.BooleanField(default=False)
    allow_contaminated = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS,
        help_text="Benchmarks whose problems' traces are kept, comma-separated (by default "
                  "the traces of every registered benchmark's problems are left out).",
    )  # fmt: skip
    dedup = serializers.BooleanField(
        default=False, help_text="Keep one trace per group of near-duplicate traces of a problem."
    )
    labels = serializers.ChoiceField(
        choices=LABELS, default="human",
        help_text="prm, prm800k: whose step ratings label the steps (reviewers', the judge "
                  "model's, or a reviewer's where there is one, else the judge's).",
    )  # fmt: skip
    neutral = serializers.ChoiceField(
        choices=NEUTRAL,
        default="negative",
        help_text="prm: whether a step rated 0 is labelled true (positive) or false (negative).",
    )

    records = serializers.ChoiceField(
        choices=["traces", "rollouts", "traces,rollouts"], default="traces",
        help_text="What the export is made of: reviewed traces, verified rollout samples "
                  "(dpo: pairs of a correct and an incorrect sample; messages, sharegpt, "
                  "alpaca: correct samples only), or both (each record says its source).",
    )  # fmt: skip
    campaign = serializers.CharField(
        required=False, allow_blank=True, max_length=Export.FILTER_MAX_CHARS,
        help_text="Rollout campaigns (names or ids, comma-separated); empty: all.",
    )  # fmt: skip
    pairs_per_problem = serializers.IntegerField(
        default=rollouts.PAIRS_PER_PROBLEM, min_value=1, max_value=1000,
        help_text="dpo from rollouts: at most this many pairs per problem.",
    )  # fmt: skip
    samples_per_problem = serializers.IntegerField(
        default=rollouts.SAMPLES_PER_PROBLEM, min_value=1, max_value=256,
        help_text="SFT from rollouts: at most this many correct samples per problem.",
    )  # fmt: skip
    pick = serializers.ChoiceField(
        choices=rollouts.PICKS, default="shortest",
        help_text="SFT from rollouts: the shortest correct samples, or a seeded draw.",
    )  # fmt: skip
    pair_layout = serializers.ChoiceField(
        choices=PAIR_LAYOUTS, default="llama-factory",
        help_text="dpo: LLaMA-Factory's ranking format, or TRL's conversational pairs.",
    )  # fmt: skip

    def validate_level(self, value):
        try:
            return parse_level(value)
        except ValueError as exc:
            raise serializers.ValidationError("Enter a whole number, e.g. 5 or Level 5.") from exc

    def validate_allow_contaminated(self, value):
        field = BenchmarkNamesField()
        names = field.to_python(value)
        try:
            field.validate(names)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return names

    def validate_split(self, value):
        try:
            parse_splits(value)
        except ExportError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate(self, attrs):
        try:
            check_style(attrs["format"], attrs["style"])
        except ExportError as exc:
            raise serializers.ValidationError({"style": str(exc)}) from exc
        sources = tuple(attrs["records"].split(","))
        try:
            check_sources(attrs["format"], sources, pair_layout=attrs["pair_layout"],
                          pairs_per_problem=attrs["pairs_per_problem"],
                          samples_per_problem=attrs["samples_per_problem"],
                          pick=attrs["pick"])  # fmt: skip
        except ExportError as exc:
            raise serializers.ValidationError({"records": str(exc)}) from exc
        if attrs.get("campaign"):
            if "rollouts" not in sources:
                raise serializers.ValidationError(
                    {"campaign": "A campaign chooses rollout samples: set records to rollouts "
                                 "or traces,rollouts."})  # fmt: skip
            try:
                rollouts.campaigns_named(attrs["campaign"])
            except ValueError as exc:
                raise serializers.ValidationError({"campaign": str(exc)}) from exc
        return attrs


def start_from(data: dict, user) -> Export:
    options = {key: data.pop(key) for key in ("format", "style", "system", "split", "seed")}
    for key in DAYS:
        if data.get(key):
            data[key] = data[key].isoformat()
    return export_start(user=user, fmt=options["format"], style=options["style"],
                        system=options["system"], split=options["split"], seed=options["seed"],
                        filters=data)  # fmt: skip


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dataset exports (admins only)."""

    serializer_class = ExportSerializer
    permission_classes = [HasRole(Role.ADMIN)]
    queryset = Export.objects.all()

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportSerializer})
    def create(self, request):
        data = ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        export = start_from(dict(data.validated_data), request.user)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The export's files as a zip archive."""
        export = self.get_object()
        if export.status != Export.Status.SUCCEEDED or not export.archive.exists():
            return Response({"detail": f"Export {export.pk} has no files ({export.status})."},
                            status=status.HTTP_404_NOT_FOUND)  # fmt: skip
        return FileResponse(
            export.archive.open("rb"),
            as_attachment=True,
            filename=f"export-{export.pk}.zip",
            content_type="application/zip",
        )
