"""Routes of the Assistants toolkit's API."""

from django.urls import path

from assistants.api.views import ImportAssistantsView

urlpatterns = [
    path("import/assistants", ImportAssistantsView.as_view(), name="import-assistants"),
]
