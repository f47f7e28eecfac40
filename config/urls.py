from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from annotator import api as annotator_api
from annotator import api_annotations
from annotator import views as annotator_views

router = DefaultRouter()
router.include_format_suffixes = False
router.register("problems", annotator_api.ProblemViewSet, basename="problem")
router.register("annotations", api_annotations.AnnotationViewSet, basename="annotation")

api_urlpatterns = [
    path("auth/token/", annotator_api.TokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", annotator_views.home, name="home"),
    path("problems/", annotator_views.problems, name="problem-list"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include((api_urlpatterns, "api"))),
]
