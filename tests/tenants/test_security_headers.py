"""Every page carries a Content-Security-Policy; the API docs load nothing from another origin."""

import re

from django.test import Client
from rest_framework.test import APIClient

from tenants.services import bootstrap


def _directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    pairs = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def _assert_html_policy(response, *, style_src: str, script_src: str = "'self'") -> None:
    directives = _directives(response)
    assert directives["style-src"] == style_src
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == script_src, "no inline script on any page"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"


def _assert_admin_policy(response) -> None:
    """The page policy, with what the admin theme's Alpine.js needs: eval, style attributes."""
    _assert_html_policy(response, style_src="'self'", script_src="'self' 'unsafe-eval'")
    assert _directives(response)["style-src-attr"] == "'unsafe-inline'"
    assert "unsafe-inline" not in _directives(response)["script-src"]


def test_admin_pages_carry_the_html_policy(db):
    login = Client().get("/admin/login/")
    assert login.status_code == 200
    _assert_admin_policy(login)

    made = bootstrap(
        tenant_slug="acme", project_slug="support", email="owner@acme.test", actor=None
    )
    client = Client()
    client.force_login(made.user)
    changelist = client.get("/admin/memory/pattern/")
    assert changelist.status_code == 200
    _assert_admin_policy(changelist)


def test_json_api_responses_carry_a_policy_that_allows_nothing(db, owner):
    for response in (
        owner.client().get("/v1/patterns"),
        APIClient().get("/v1/patterns"),  # 401
        APIClient().get("/v1/no-such-thing"),  # 404
        APIClient().get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json"),
    ):
        assert response["Content-Type"].startswith("application/"), response["Content-Type"]
        directives = _directives(response)
        assert directives == {"default-src": "'none'", "frame-ancestors": "'none'"}, directives


def test_swagger_ui_is_served_from_local_static_files(db):
    docs = Client().get("/v1/docs")
    assert docs.status_code == 200
    _assert_html_policy(docs, style_src="'self' 'unsafe-inline'")
    html = docs.content.decode()
    assert "<script>" not in html, "the init script is a separate file, allowed by script-src"
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/") for source in sources), sources
    for source in sources:
        asset = Client().get(source)
        assert asset.status_code == 200, source
        if source.startswith("/v1/docs"):
            assert "SwaggerUIBundle" in asset.content.decode()


def test_redoc_is_served_from_local_static_files(db):
    redoc = Client().get("/v1/redoc")
    assert redoc.status_code == 200
    _assert_html_policy(redoc, style_src="'self' 'unsafe-inline'")
    html = redoc.content.decode()
    assert "<script>" not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("redoc.standalone.js" in source for source in sources), sources
    assert all(source.startswith("/") for source in sources), sources
    for source in sources:
        assert Client().get(source).status_code == 200, source
