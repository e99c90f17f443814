"""The API docs and the admin in a real Chromium, network cut off: they work under their CSP."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from memory.services import learn_pattern
from tenants.services import bootstrap

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

# Runs before any page script (Playwright injects it outside the page's CSP) and records violations.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""
# Redoc's sidebar footer always asks cdn.redoc.ly for the Redocly logo: the policy blocks it before
# any request is made (Redoc then hides the image), so this is the one violation expected.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class OfflinePage:
    """A Playwright page and what went wrong on it."""

    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    blocked: list[str] = field(default_factory=list)  # requests to another host, aborted


@pytest.fixture
def offline(live_server):
    """A page whose every request to a host other than the live server is aborted."""
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    local = urlsplit(live_server.url).hostname
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context()
        offline = OfflinePage(page=context.new_page())

        def only_local(route):
            if urlsplit(route.request.url).hostname == local:
                route.continue_()
            else:
                offline.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        context.add_init_script(RECORD_VIOLATIONS)
        offline.page.on("console", lambda m: m.type == "error" and offline.errors.append(m.text))
        offline.page.on("pageerror", lambda error: offline.errors.append(str(error)))
        yield offline
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _assert_clean(offline: OfflinePage, *, blocked_by_policy: tuple[str, ...] = ()) -> None:
    expected = [f"img-src {url}" for url in blocked_by_policy]
    assert offline.page.evaluate("window.__violations") == expected
    assert [e for e in offline.errors if not any(url in e for url in blocked_by_policy)] == []
    assert offline.blocked == [], "the page asked for something outside the server"


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_operations_offline_under_csp(offline, live_server):
    response = offline.page.goto(f"{live_server.url}/v1/docs")
    recall = offline.page.locator(".opblock-summary-path", has_text="/v1/recall").first
    recall.wait_for(state="visible", timeout=30_000)
    assert offline.page.locator(".opblock").count() > 10
    assert "script-src 'self'" in response.headers["content-security-policy"]
    _assert_clean(offline)


@pytest.mark.django_db(transaction=True)
def test_redoc_renders_operations_offline_under_csp(offline, live_server):
    response = offline.page.goto(f"{live_server.url}/v1/redoc")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    offline.page.locator("h1", has_text="Engramia API").wait_for(state="visible", timeout=30_000)
    endpoint = offline.page.get_by_text("/v1/recall", exact=False).first
    endpoint.wait_for(state="attached", timeout=30_000)
    _assert_clean(offline, blocked_by_policy=(REDOC_LOGO,))


@pytest.mark.django_db(transaction=True)
def test_admin_works_under_its_csp_with_no_violation(offline, live_server):
    made = bootstrap(
        tenant_slug="acme", project_slug="support", email="owner@acme.test", actor=None
    )
    learn_pattern(
        project=made.project, task="Parse invoices from PDF", code="pypdf", eval_score=8, actor=None
    )
    page = offline.page
    login = page.goto(f"{live_server.url}/admin/login/")
    assert "style-src 'self';" in login.headers["content-security-policy"]
    page.fill("#id_username", "owner@acme.test")
    page.fill("#id_password", made.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/admin/memory/pattern/")
    page.click("text=Parse invoices from PDF")
    page.fill("#id_code", "import pypdf  # curated")
    page.click("button[name=_save]")
    assert "was changed successfully" in page.locator("#main").inner_text()
    _assert_clean(offline)
