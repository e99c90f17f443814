"""The admin in a real Chromium: an owner logs in, sees only their tenant, and curates."""

import os
import re
from pathlib import Path

import pytest

from memory.services import learn_pattern
from tenants.services import bootstrap, ensure_project

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _login(page, live_server, email, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_owner_logs_in_curates_patterns_and_sees_only_their_tenant(page, live_server):
    mine = bootstrap(
        tenant_slug="acme", project_slug="support", email="owner@acme.test", actor=None
    )
    bootstrap(tenant_slug="globex", project_slug="research", email="boss@globex.test", actor=None)
    learn_pattern(
        project=mine.project, task="Parse invoices from PDF", code="pypdf", eval_score=8, actor=None
    )
    learn_pattern(
        project=ensure_project("globex", "research", actor=None),
        task="Globex secret plan",
        code="x",
        actor=None,
    )

    _login(page, live_server, "owner@acme.test", mine.password)
    assert page.locator("#site-name").inner_text() == "Engramia"
    page.goto(f"{live_server.url}/admin/tenants/project/")
    body = page.locator("#result_list").inner_text()
    assert "acme/support" in body and "globex" not in body

    page.goto(f"{live_server.url}/admin/memory/pattern/")
    rows = page.locator("#result_list").inner_text()
    assert "Parse invoices from PDF" in rows and "Globex secret plan" not in rows
    page.click("text=Parse invoices from PDF")
    page.fill("#id_code", "import pypdf  # curated")
    page.click("button[name=_save]")
    assert "was changed successfully" in page.locator("#main").inner_text()

    page.goto(f"{live_server.url}/admin/tenants/auditentry/")
    audit = page.locator("#result_list").inner_text()
    assert "owner@acme.test" in audit and "Globex" not in audit


@pytest.mark.django_db(transaction=True)
def test_new_api_key_secret_is_shown_once(page, live_server):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@localhost", "root-pass-123")
    made = bootstrap(
        tenant_slug="acme", project_slug="support", email="owner@acme.test", actor=None
    )
    _login(page, live_server, "root", "root-pass-123")
    page.goto(f"{live_server.url}/admin/tenants/apikey/add/")
    page.select_option("#id_user", str(made.user.pk))
    page.select_option("#id_tenant", str(made.project.tenant_id))
    page.select_option("#id_project", str(made.project.pk))
    page.fill("#id_name", "from-admin")
    page.select_option("#id_role", "reader")
    page.click("button[name=_save]")
    message = page.locator("#main").inner_text()
    secret = re.search(r"eng_[0-9a-f]{12}_[A-Za-z0-9_-]+", message)
    assert secret, message
    page.goto(f"{live_server.url}/admin/tenants/apikey/")
    assert secret.group(0) not in page.content()
