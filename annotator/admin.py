from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from django.utils.html import format_html_join
from rest_framework.authtoken.models import TokenProxy

from . import problem_groups, services
from .benchmarks import benchmark_add
from .difficulty import campaign_choices
from .models import (
    Annotation,
    AnnotationRevision,
    ApiToken,
    Benchmark,
    BenchmarkItem,
    Contamination,
    Problem,
    WorkspaceSettings,
)
from .problem_import import ImportFileError, uploaded_file


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are read in the admin and never added, changed or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "subject", "level", "updated_at"]
    list_filter = ["source", "subject", "level"]
    search_fields = ["external_id", "statement"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change or "statement" in form.changed_data:
            problem_groups.problems_regroup(pks=[obj.pk])


def _steps_as_text(steps) -> str:
    """Steps as escaped text lines: user text is never rendered as HTML in the admin."""
    rows = ((step["kind"], step["text"], "; ".join(step["notes"]) or "none") for step in steps)
    return format_html_join("\n", "<p><b>{}</b> {} <i>(notes: {})</i></p>", rows)


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    fields = ["version", "saved_by", "created_at", "final_answer"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "annotator", "status", "version", "answer_check", "updated_at"]
    list_filter = ["status", "answer_check"]
    list_select_related = ["problem", "annotator"]
    search_fields = ["problem__external_id", "annotator__username"]
    raw_id_fields = ["problem", "annotator"]
    readonly_fields = ["steps_display", "version", "created_at", "updated_at", "submitted_at"]
    exclude = ["steps"]
    inlines = [RevisionInline]

    @admin.display(description="Steps")
    def steps_display(self, obj):
        return _steps_as_text(obj.steps)


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(ReadOnlyAdmin):
    list_display = ["annotation", "version", "saved_by", "created_at"]
    list_select_related = ["annotation__problem", "annotation__annotator", "saved_by"]
    raw_id_fields = ["annotation"]
    readonly_fields = [
        "annotation",
        "version",
        "steps_display",
        "final_answer",
        "saved_by",
        "created_at",
    ]
    exclude = ["steps"]
    actions = ["restore"]

    @admin.display(description="Steps")
    def steps_display(self, obj):
        return _steps_as_text(obj.steps)

    @admin.action(description="Restore the selected revision (saved as a new version)")
    def restore(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one revision to restore.", messages.ERROR)
            return
        annotation = services.revision_restore(revision_id=queryset.get().pk, user=request.user)
        self.message_user(request, f"Restored as version {annotation.version} of {annotation}.")


class WorkspaceSettingsForm(forms.ModelForm):
    # A menu of the campaigns rather than a bare id (the field is an id: annotator does not
    # depend on expansion's tables, see annotator/difficulty.py).
    lease_campaign = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        help_text=WorkspaceSettings._meta.get_field("lease_campaign").help_text,
    )  # fmt: skip

    class Meta:
        model = WorkspaceSettings
        fields = ["annotations_per_problem", "lease_minutes", "min_steps",
                  "show_answer_after_submit", "raters_per_trace", "lease_campaign",
                  "lease_skip_solved"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lease_campaign"].choices = [("", "None: import order"), *campaign_choices()]

    def clean(self):
        data = super().clean()
        if data.get("lease_skip_solved") is not None and data.get("lease_campaign") is None:
            self.add_error("lease_skip_solved", "Choose the lease campaign whose samples count.")
        if data.get("lease_skip_solved") == 0:
            self.add_error("lease_skip_solved", "Solved in at least 0 samples skips every problem.")
        return data


@admin.register(WorkspaceSettings)
class WorkspaceSettingsAdmin(admin.ModelAdmin):
    form = WorkspaceSettingsForm

    def has_add_permission(self, request):
        return not WorkspaceSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


# Tokens are issued by POST /api/auth/token/ and kept hashed (annotator/tokens.py); DRF's
# plain-text token table is no longer used.
admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username", "prefix"]
    fields = list_display
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


class BenchmarkAddForm(forms.ModelForm):
    """Adding a benchmark means uploading its file: the items are read, every problem of the
    bank is compared with them, and a bad line refuses the whole file."""

    file = forms.FileField(help_text="JSONL or CSV, one benchmark problem per line or row.")

    class Meta:
        model = Benchmark
        fields = ["name", "text_field"]

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if self.errors or upload is None:
            return data
        with uploaded_file(upload) as path:
            try:
                report = benchmark_add(
                    path=path,
                    name=data["name"],
                    text_field=data["text_field"],
                    file_name=upload.name,
                )
            except ImportFileError as exc:
                raise forms.ValidationError(str(exc)) from exc
        if report.errors:
            shown = [str(error) for error in report.errors[:20]]
            more = len(report.errors) - len(shown)
            raise forms.ValidationError([*shown, *([f"... and {more} more."] if more else []),
                                         "Nothing was stored."])  # fmt: skip
        self.report = report
        self.instance = Benchmark.objects.get(name=report.name)
        return data


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ["name", "item_count", "problems_contaminated", "file_name", "created_at"]
    readonly_fields = ["name", "file_name", "text_field", "item_count", "problems_contaminated",
                       "created_at"]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _items=Count("items", distinct=True),
            _problems=Subquery(
                Contamination.objects.filter(benchmark=OuterRef("pk")).order_by()
                .values("benchmark").annotate(n=Count("pk")).values("n")
            ),
        )  # fmt: skip

    @admin.display(description="items", ordering="_items")
    def item_count(self, obj) -> int:
        return getattr(obj, "_items", None) or obj.items.count()

    @admin.display(description="problems of the bank in it")
    def problems_contaminated(self, obj) -> int:
        found = getattr(obj, "_problems", None)
        return found if found is not None else Contamination.objects.filter(benchmark=obj).count()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BenchmarkAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "text_field", "file"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        report = getattr(form, "report", None)
        if report is not None:
            count = report.contaminated[report.name]
            level = messages.WARNING if count else messages.INFO
            self.message_user(request, f"{report.items} item(s) read; {count} problem(s) of "
                              "the bank overlap this benchmark.", level)  # fmt: skip


@admin.register(BenchmarkItem)
class BenchmarkItemAdmin(ReadOnlyAdmin):
    list_display = ["benchmark", "line", "external_id", "text"]
    list_filter = ["benchmark"]
    search_fields = ["text", "external_id"]


@admin.register(Contamination)
class ContaminationAdmin(ReadOnlyAdmin):
    list_display = ["problem", "benchmark", "exact", "overlap", "ngram_size", "checked_at"]
    list_filter = ["benchmark", "exact"]
    list_select_related = ["problem", "benchmark"]
    search_fields = ["problem__external_id", "problem__statement"]
