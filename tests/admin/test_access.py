"""Access pages: keys issued and rotated by tenant admins, within the API's role caps."""

import re

import pytest

from tenants.models import ApiKey
from tenants.services import authenticate_api_key
from tests.admin.conftest import StaffWorld

pytestmark = pytest.mark.django_db
SECRET = re.compile(r"eng_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def _messages(page) -> list[str]:
    return [str(message) for message in page.context["messages"]]


def test_a_tenant_owner_issues_then_rotates_a_key_and_each_secret_shows_once(
    staff_world: StaffWorld,
):
    client = staff_world.client(staff_world.owner)
    page = client.post(
        "/admin/tenants/apikey/add/",
        {
            "user": staff_world.reader.pk,
            "tenant": staff_world.support.project.tenant_id,
            "project": staff_world.support.project.pk,
            "name": "ci",
            "role": "reader",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    first = SECRET.search(" ".join(_messages(page))).group(0)
    key = ApiKey.objects.get(name="ci")
    assert authenticate_api_key(first) is not None
    assert first not in client.get("/admin/tenants/apikey/").content.decode()
    page = client.post(
        "/admin/tenants/apikey/",
        {"action": "rotate_keys", "_selected_action": [key.pk]},
        follow=True,
    )
    second = SECRET.search(" ".join(_messages(page))).group(0)
    assert second != first
    assert authenticate_api_key(first) is None and authenticate_api_key(second) is not None


def test_a_project_admin_cannot_rotate_the_owners_key(staff_world: StaffWorld):
    key = staff_world.owner_key
    before = key.key_hash
    page = staff_world.client(staff_world.admin).post(
        "/admin/tenants/apikey/",
        {"action": "rotate_keys", "_selected_action": [key.pk]},
        follow=True,
    )
    key.refresh_from_db()
    assert key.key_hash == before
    assert not any(SECRET.search(message) for message in _messages(page))
