"""Routes of the skills API."""

urlpatterns: list = []
