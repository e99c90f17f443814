"""Routes of the session API.

A session id may hold any character, '/' included (clients send it as %2F, which WSGI decodes
before routing), so the id is matched greedily and the item and pop routes come first: in them
a trailing `/items` or `/pop` is always the action. DELETE treats the whole rest of the path as
the id on every route (conversations.api.views.SessionView).
"""

from django.urls import path, register_converter
from django.urls.converters import PathConverter

from conversations.api.views import SessionItemsView, SessionPopView, SessionView


class SessionIdConverter(PathConverter):
    """Any text, '/' included, and also empty: `sessions//items` is a 400 naming the id.

    The bare route keeps `path` (non-empty), so `/v1/sessions/` resolves to nothing and
    CommonMiddleware never redirects `/v1/sessions` to it.
    """

    regex = ".*"


register_converter(SessionIdConverter, "session")

urlpatterns = [
    path("sessions/<session:session_id>/items", SessionItemsView.as_view(), name="session-items"),
    path("sessions/<session:session_id>/pop", SessionPopView.as_view(), name="session-pop"),
    path("sessions/<path:session_id>", SessionView.as_view(), name="session"),
]
