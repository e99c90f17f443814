"""Routes of the memory API."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from memory.api.documents import DocumentViewSet
from memory.api.project import ProjectView
from memory.api.views import (
    AgingView,
    EvaluateView,
    FeedbackView,
    LearnView,
    MetricsView,
    OutcomeView,
    PatternViewSet,
    RecallView,
)

router = SimpleRouter(trailing_slash=False)
router.register("patterns", PatternViewSet, basename="pattern")
router.register("documents", DocumentViewSet, basename="document")

urlpatterns = [
    path("project", ProjectView.as_view(), name="project"),
    path("learn", LearnView.as_view(), name="learn"),
    path("recall", RecallView.as_view(), name="recall"),
    path("evaluate", EvaluateView.as_view(), name="evaluate"),
    path("outcomes", OutcomeView.as_view(), name="outcomes"),
    path("feedback", FeedbackView.as_view(), name="feedback"),
    path("aging", AgingView.as_view(), name="aging"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    *router.urls,
]
