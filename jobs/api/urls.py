"""Routes of the jobs API."""

urlpatterns: list = []
