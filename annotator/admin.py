from django.contrib import admin

from .models import Annotation, Problem


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "subject", "level", "updated_at"]
    list_filter = ["source", "subject", "level"]
    search_fields = ["external_id", "statement"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "annotator", "status", "version", "updated_at"]
    list_filter = ["status"]
    list_select_related = ["problem", "annotator"]
    raw_id_fields = ["problem", "annotator"]
    readonly_fields = ["created_at", "updated_at", "submitted_at"]
