"""Routes of the jobs API."""

from rest_framework.routers import SimpleRouter

from jobs.api.views import JobViewSet

router = SimpleRouter(trailing_slash=False)
router.register("jobs", JobViewSet, basename="job")

urlpatterns = [*router.urls]
