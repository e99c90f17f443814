"""Routes of the skills API."""

from rest_framework.routers import SimpleRouter

from skills.api.views import SkillViewSet

router = SimpleRouter(trailing_slash=False)
router.register("skills", SkillViewSet, basename="skill")

urlpatterns = [*router.urls]
