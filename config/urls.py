from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from annotator import api as annotator_api
from annotator import api_annotations, api_users
from annotator.views import accounts, workspace
from annotator.views import problems as problem_views
from config.i18n import language_set
from curation import api as curation_api
from curation import api_exports
from curation import home as curation_home
from curation import views as curation_views
from curation.analytics import views as analytics_views
from curation.judging import api as judging_api
from curation.judging import views as judging_views
from curation.ratings import api as ratings_api
from curation.ratings import views as ratings_views
from curation.rollouts import views as rollout_views
from expansion import api as expansion_api
from expansion import api_admin as expansion_api_admin
from expansion import views as expansion_views
from expansion.rollouts import api as rollouts_api

router = DefaultRouter()
router.include_format_suffixes = False
router.register("problems/import", annotator_api.ProblemImportView, basename="problem-import")
router.register("problems", annotator_api.ProblemViewSet, basename="problem")
router.register("annotations", api_annotations.AnnotationViewSet, basename="annotation")
# Expansion's trace API as curation extends it (each trace with its review).
router.register("traces", curation_api.ReviewedTraceViewSet, basename="trace")
router.register("exports", api_exports.ExportViewSet, basename="export")
router.register("endpoints", expansion_api_admin.LLMEndpointViewSet, basename="endpoint")
router.register("prompt-versions", expansion_api_admin.PromptVersionViewSet, basename="prompt")
router.register("users", api_users.UserViewSet, basename="user")
router.register("solve-prompts", rollouts_api.SolvePromptViewSet, basename="solve-prompt")
router.register("rollout-campaigns", rollouts_api.CampaignViewSet, basename="rollout-campaign")

api_urlpatterns = [
    path("auth/token/", annotator_api.TokenView.as_view(), name="token"),
    path(
        "annotations/<int:pk>/expand/", expansion_api.ExpandView.as_view(), name="annotation-expand"
    ),
    path("traces/<int:pk>/steps/", ratings_api.TraceStepsView.as_view(), name="trace-steps"),
    path(
        "traces/<int:pk>/steps/<int:n>/rating/",
        ratings_api.StepRatingView.as_view(),
        name="trace-step-rating",
    ),
    path("traces/<int:pk>/judge/", judging_api.TraceJudgeView.as_view(), name="trace-judge"),
    path("judge-runs/", judging_api.JudgeRunsView.as_view(), name="judge-runs"),
    path("review-queue/", curation_api.ReviewQueueView.as_view(), name="review-queue"),
    path("traces/<int:pk>/review/", curation_api.TraceReviewView.as_view(), name="trace-review"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", curation_home.home, name="home"),
    path("problems/", problem_views.problems, name="problem-list"),
    path("problems/<int:problem_id>/", problem_views.problem_detail, name="problem-detail"),
    path(
        "problems/<int:problem_id>/campaigns/<int:campaign_id>/samples/",
        rollout_views.samples,
        name="problem-samples",
    ),
    path(
        "problems/<int:problem_id>/campaigns/<int:campaign_id>/dispute-checked/",
        rollout_views.dispute_checked,
        name="problem-dispute-checked",
    ),
    path("annotations/next/", workspace.next_problem, name="annotation-next"),
    path("annotations/preview/", workspace.preview, name="annotation-preview"),
    path("annotations/<int:annotation_id>/", workspace.edit, name="annotation-edit"),
    path("annotations/<int:annotation_id>/save/", workspace.save, name="annotation-save"),
    path("annotations/<int:annotation_id>/steps/", workspace.change_steps, name="annotation-steps"),
    path("annotations/<int:annotation_id>/submit/", workspace.submit, name="annotation-submit"),
    path("annotations/<int:annotation_id>/release/", workspace.release, name="annotation-release"),
    path("traces/", expansion_views.trace_list, name="trace-list"),
    path("traces/<int:trace_id>/", expansion_views.trace_detail, name="trace-detail"),
    path("traces/<int:trace_id>/progress/", expansion_views.trace_progress, name="trace-progress"),
    path("traces/<int:trace_id>/cancel/", expansion_views.trace_cancel_view, name="trace-cancel"),
    path("review/", curation_views.queue, name="review-queue"),
    path("review/next/", curation_views.next_item, name="review-next"),
    path("review/<int:trace_id>/", curation_views.review, name="review-trace"),
    path("review/<int:trace_id>/decide/", curation_views.decide, name="review-decide"),
    path("review/<int:trace_id>/steps/<int:number>/rate/", ratings_views.rate, name="review-rate"),
    path(
        "review/<int:trace_id>/record/<int:record_step>/lost/",
        ratings_views.lost,
        name="review-lost",
    ),
    path("review/<int:trace_id>/judge/", judging_views.ask, name="review-judge"),
    path("review/<int:trace_id>/judge/accept/", judging_views.accept, name="review-judge-accept"),
    path("review/<int:trace_id>/judge/state/", judging_views.state, name="review-judge-state"),
    path("review/<int:trace_id>/best/", curation_views.pick_best, name="review-best"),
    path("review/decisions/<int:decision_id>/undo/", curation_views.undo, name="review-undo"),
    path("exports/", curation_views.exports, name="exports"),
    path(
        "exports/<int:export_id>/download/", curation_views.export_download, name="export-download"
    ),
    path("analytics/", analytics_views.dashboard, name="analytics"),
    path("analytics/compare/", analytics_views.compare, name="analytics-compare"),
    path("analytics/agreement/", analytics_views.agreement, name="analytics-agreement"),
    path("analytics/traces/", analytics_views.traces, name="analytics-traces"),
    path("analytics/campaigns/", analytics_views.campaigns, name="analytics-campaigns"),
    path(
        "analytics/campaigns/<int:campaign_id>/samples/",
        analytics_views.campaign_samples,
        name="analytics-campaign-samples",
    ),
    path("analytics/markers/", analytics_views.marker_add, name="analytics-marker-add"),
    path("analytics/refresh/", analytics_views.profiles_refresh, name="analytics-refresh"),
    path("accounts/login/", accounts.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/language/", language_set, name="language-set"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include((api_urlpatterns, "api"))),
]
