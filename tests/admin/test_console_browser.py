"""The console in a real Chromium, as a superuser, a tenant owner and a project reader.

Each persona signs in and walks every console page, asserting on what is visible: the
dashboard's numbers, a recall ranked in the playground, a merge, the audit CSV, the API docs with
the network cut off. On every page: no Content-Security-Policy violation, and for the tenant
staff no trace of the other tenant. A screenshot of each page is saved under
.artifacts/screenshots/ (not committed) for a reviewer.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jobs.models import Job
from jobs.services import submit_job
from memory.models import Evaluation, Pattern
from memory.operations import recall
from memory.services import add_evaluation, learn_pattern
from skills.services import register_skill, update_skill
from tenants.models import AuditEntry
from tenants.services import bootstrap, set_membership

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
FOREIGN = "globex"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@dataclass
class World:
    """acme/support with patterns, a skill, jobs and recalls; globex/research beside it."""

    acme: Any
    owner_password: str
    reader: Any
    invoices: int
    rows: int
    refunds: int
    foreign_task: str = "Globex secret plan"
    passwords: dict[str, str] = field(default_factory=dict)


def _learn(project: Any, task: str, score: float | None = None) -> int:
    code = "import pypdf\n\ndef parse(path):\n    return pypdf.PdfReader(path).pages\n"
    return learn_pattern(
        project=project, task=task, code=code, eval_score=score, actor=None
    ).pattern_id


@pytest.fixture
def world(transactional_db: Any, django_user_model: Any) -> World:
    django_user_model.objects.create_superuser("root", "root@localhost", "root-pass-123")
    made = bootstrap(
        tenant_slug="acme", project_slug="support", email="owner@acme.test", actor=None
    )
    project = made.project
    invoices = _learn(project, "Parse invoices from PDF", 8)
    rows = _learn(project, "Parse the PDF invoices into rows", 3)
    refunds = _learn(project, "Send a refund email to the customer")
    add_evaluation(
        pattern=Pattern.objects.get(pk=rows),
        score=4,
        evaluator="llm:judge",
        feedback="Misses scanned pages.",
        actor=None,
    )
    skill = register_skill(actor=made.user, project=project, name="lookup_invoice")
    update_skill(
        actor=made.user,
        skill=skill,
        parameters={
            "type": "object",
            "properties": {"invoice_id": {"type": "string", "description": "The number"}},
            "required": ["invoice_id"],
        },
    )
    failed = submit_job(project=project, kind="aging", actor=made.user, enqueue=False)
    Job.objects.filter(pk=failed.pk).update(
        status="failed", error="the judge is not configured", progress_done=2, progress_total=5
    )
    for task in ("invoices from pdf", "refund email"):
        recall(project=project, data={"task": task})
    reader = django_user_model.objects.create_user(
        "reader@acme.test", "reader@acme.test", "reader-pass-123", is_staff=True
    )
    set_membership(user=reader, scope=project, role="reader", actor=None)
    foreign = bootstrap(
        tenant_slug=FOREIGN, project_slug="research", email="boss@globex.test", actor=None
    )
    _learn(foreign.project, "Globex secret plan", 9)
    register_skill(actor=None, project=foreign.project, name="globex_tool")
    recall(project=foreign.project, data={"task": "secret"})
    return World(made, made.password, reader, invoices, rows, refunds)


class Walker:
    """A signed-in browser page that checks and photographs each page it visits."""

    def __init__(self, page: Any, base: str, persona: str, *, foreign_free: bool) -> None:
        self.page, self.base, self.persona, self.foreign_free = page, base, persona, foreign_free
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def visit(self, name: str, path: str) -> str:
        """Open path, check it, save its screenshot; returns the page's visible text."""
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("networkidle")
        return self.check(name)

    def check(self, name: str) -> str:
        violations = self.page.evaluate("window.__violations")
        assert violations == [], f"{name}: CSP violations {violations}"
        if self.foreign_free:
            assert FOREIGN not in self.page.content().lower(), f"{name} shows the other tenant"
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.persona}-{name}.png"), full_page=True)
        return self.page.locator("body").inner_text()


@pytest.fixture
def browser(live_server: Any) -> Any:
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _walker(browser: Any, live_server: Any, persona: str, email: str, password: str) -> Walker:
    local = urlsplit(live_server.url).hostname
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    # The network is cut off: only the live server answers (docs, fonts, charts are local).
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if urlsplit(route.request.url).hostname == local else route.abort()
        ),
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return Walker(page, live_server.url, persona, foreign_free=persona != "superuser")


def _csv_rows(walker: Walker, href: str) -> list[dict[str, str]]:
    body = walker.page.request.get(f"{walker.base}{href}").text()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.django_db(transaction=True)
def test_the_tenant_owner_walks_the_console_and_curates(browser, live_server, world):
    walker = _walker(browser, live_server, "owner", "owner@acme.test", world.owner_password)
    page = walker.page
    text = walker.visit("dashboard", "/admin/")
    assert page.locator("#stat-live").inner_text() == "3"
    assert page.locator("#stat-recalls").inner_text() == "2"
    assert page.locator("#stat-failed").inner_text() == "1"
    assert "misses scanned pages" in text.lower()

    walker.visit("patterns", "/admin/memory/pattern/")
    assert page.locator("#result_list tbody tr").count() == 3
    walker.visit("patterns-similar", "/admin/memory/pattern/?similar=invoices+in+a+pdf")
    assert "Parse invoices from PDF" in page.locator("#result_list tbody tr").first.inner_text()

    walker.visit("pattern", f"/admin/memory/pattern/{world.rows}/change/")
    page.get_by_text("Nearest patterns", exact=True).click()
    walker.check("pattern-nearest")
    page.locator(f'button[name=merge_with][value="{world.invoices}"]').click()
    page.wait_for_load_state("networkidle")
    assert f"Kept #{world.invoices}" in walker.check("pattern-merged")
    live = list(
        Pattern.objects.filter(
            project=world.acme.project, archived=False, pk__in=[world.invoices, world.rows]
        )
    )
    assert [p.pk for p in live] == [world.invoices]
    assert Evaluation.objects.filter(pattern_id=world.invoices).count() == 3
    page.get_by_text("Evaluations", exact=True).first.click()
    walker.check("pattern-evaluations")
    assert page.locator("#evaluation-history tbody tr").count() == 3

    walker.visit("skills", "/admin/skills/skill/")
    page.get_by_text("lookup_invoice").first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_text("Versions", exact=True).click()
    assert "version 2 against 1" in walker.check("skill-versions")
    page.get_by_text("Exports", exact=True).click()
    assert "input_schema" in walker.check("skill-exports")

    walker.visit("audit", "/admin/tenants/auditentry/?action__exact=1")
    href = page.locator("#audit-export-link").get_attribute("href")
    rows = _csv_rows(walker, href)
    expected = AuditEntry.objects.filter(tenant_id=world.acme.project.tenant_id, action=1)
    assert len(rows) == expected.count() > 0 and {row["action"] for row in rows} == {"update"}

    walker.visit("jobs", "/admin/jobs/job/")
    assert page.locator("progress.eng-bar").count() == 1
    walker.visit("memberships", "/admin/tenants/membership/")
    walker.visit("keys", "/admin/tenants/apikey/")


@pytest.mark.django_db(transaction=True)
def test_the_project_reader_tries_a_recall_and_sees_only_their_project(browser, live_server, world):
    walker = _walker(browser, live_server, "reader", "reader@acme.test", "reader-pass-123")
    page = walker.page
    walker.visit("dashboard", "/admin/")
    assert page.locator("#stat-live").inner_text() == "3"
    walker.visit("playground", "/admin/playground/")
    page.fill("#id_task", "parse invoices from a pdf")
    page.check("#id_eval_weighted")
    page.fill("#id_why_not", str(world.refunds))
    page.click("#playground-run")
    page.wait_for_load_state("networkidle")
    text = walker.check("playground-results")
    first = page.locator(".playground-match").first
    assert "Parse invoices from PDF" in first.inner_text()
    assert first.locator("meter").count() == 3 and "similarity" in first.inner_text()
    assert page.locator("#playground-strategy").inner_text() == "exact"
    assert " ms" in page.locator("#playground-time").inner_text()
    assert "Why not this one?" in text
    walker.visit("patterns", "/admin/memory/pattern/")
    walker.visit("pattern", f"/admin/memory/pattern/{world.invoices}/change/")
    assert page.locator("button[name=merge_with]").count() == 0
    walker.visit("audit", "/admin/tenants/auditentry/")
    walker.visit("jobs", "/admin/jobs/job/")


@pytest.mark.django_db(transaction=True)
def test_the_superuser_sees_every_tenant_and_the_docs_work_offline(browser, live_server, world):
    walker = _walker(browser, live_server, "superuser", "root", "root-pass-123")
    page = walker.page
    text = walker.visit("dashboard", "/admin/")
    assert page.locator("#stat-live").inner_text() == "4"
    assert page.locator("#stat-recalls").inner_text() == "3"
    assert "globex/research" in text
    walker.visit("task-queue", "/admin/django_q/ormq/")
    walker.visit("users", "/admin/auth/user/")
    page.goto(f"{live_server.url}/v1/docs")
    page.locator(".opblock-summary-path", has_text="/v1/recall").first.wait_for(timeout=30_000)
    assert page.locator(".opblock").count() > 10
    page.screenshot(path=str(SCREENSHOTS / "superuser-api-docs.png"), full_page=False)
