"""Content-Security-Policy on every response: pages run only our own scripts, JSON runs nothing."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Pages load scripts, styles and fonts from /static/ only and need no inline script or style;
# the admin and the API docs add what their UIs need (below, and engramia_site.api_docs).
HTML_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def html_policy(**extra: str) -> str:
    """The page policy, with extra directives (worker_src="...") for a page that needs them."""
    directives = HTML_DIRECTIVES | {name.replace("_", "-"): value for name, value in extra.items()}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


HTML_POLICY = html_policy()
# The admin's theme (django-unfold) drives its pages with Alpine.js, which compiles the
# x-data / x-on expressions in the HTML with the Function constructor ('unsafe-eval'), and sets
# a few style attributes (x-bind:style: the action bar's width; the theme's progress bars):
# style-src-attr 'unsafe-inline'. Nothing more: scripts still come only from /static/ (no
# inline script, no other host), and style elements and sheets only from files
# (console/theme.css replaces the theme's inline colour block; htmx's is turned off).
ADMIN_PREFIX = "/admin/"
ADMIN_POLICY = html_policy(script_src="'self' 'unsafe-eval'", style_src_attr="'unsafe-inline'")
# JSON, the schema and static files are never rendered as a page, so they may load nothing.
STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'"


def policy_for(response: HttpResponse, path: str = "") -> str:
    """The policy a response gets: the page policy for HTML, the strict one for anything else."""
    content_type = response.get("Content-Type", "") or ""
    if not content_type.startswith("text/html"):
        return STRICT_POLICY
    return ADMIN_POLICY if path.startswith(ADMIN_PREFIX) else HTML_POLICY


class ContentSecurityPolicyMiddleware:
    """Adds a Content-Security-Policy header unless the view already set one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", policy_for(response, request.path))
        return response
