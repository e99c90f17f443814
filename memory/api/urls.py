"""Routes of the memory API."""

urlpatterns: list = []
