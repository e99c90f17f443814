"""Routes of the tenants API."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api.views import ApiKeyViewSet, AuditViewSet, HealthView

router = SimpleRouter(trailing_slash=False)
router.register("keys", ApiKeyViewSet, basename="key")
router.register("audit", AuditViewSet, basename="audit")

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    *router.urls,
]
