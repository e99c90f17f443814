"""Personas and clients shared by the whole suite.

Tenant A ("acme") has an owner and a reader; tenant B ("globex") is owned by the outsider. Every
request goes through the real middleware, authentication and the embedded PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Persona:
    """A user with a key acting in one project."""

    user: Any
    project: Any
    key: Any
    secret: str

    def client(self) -> Any:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.secret}")
        return client


def make_persona(email: str, project: Any, role: str, *, tenant_role: bool = False) -> Persona:
    """A user holding role in project (or in its whole tenant), with a key capped at role."""
    from django.contrib.auth import get_user_model

    from tenants.services import create_api_key, set_membership

    user = get_user_model().objects.create_user(username=email, email=email, password="pw-12345!")
    set_membership(
        user=user, scope=project.tenant if tenant_role else project, role=role, actor=None
    )
    issued = create_api_key(
        user=user,
        tenant=project.tenant,
        project=project,
        name=f"{email}-key",
        role=role,
        actor=None,
    )
    return Persona(user=user, project=project, key=issued.key, secret=issued.secret)


@pytest.fixture(autouse=True)
def _no_local_job_threads(monkeypatch):
    """Local-mode Memory objects start no job thread unless a test asks (tests run jobs inline)."""
    monkeypatch.setenv("ENGRAMIA_LOCAL_JOBS", "off")


@pytest.fixture(autouse=True)
def _no_kept_key_rows():
    """Each test starts with no API key rows kept by the process (their tables were rolled back)."""
    from tenants.keyscope import forget_key_scopes

    forget_key_scopes()


@pytest.fixture
def project_a(db: Any) -> Any:
    from tenants.services import ensure_project

    return ensure_project("acme", "support", actor=None)


@pytest.fixture
def project_b(db: Any) -> Any:
    from tenants.services import ensure_project

    return ensure_project("globex", "research", actor=None)


@pytest.fixture
def owner(project_a: Any) -> Persona:
    return make_persona("owner@acme.test", project_a, "owner", tenant_role=True)


@pytest.fixture
def editor(project_a: Any) -> Persona:
    return make_persona("editor@acme.test", project_a, "editor")


@pytest.fixture
def reader(project_a: Any) -> Persona:
    return make_persona("reader@acme.test", project_a, "reader")


@pytest.fixture
def outsider(project_b: Any) -> Persona:
    return make_persona("boss@globex.test", project_b, "owner", tenant_role=True)


@pytest.fixture
def persona_factory(db: Any) -> Callable[..., Persona]:
    return make_persona


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """Before the test database is dropped, end sessions left by live-server and worker threads."""
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def every_large_project(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every project above the exact-search threshold needs an HNSW index of its own, whatever
    its share of its model's rows (as in a deployment of many projects; the tests of the share
    rule itself run without it)."""
    from memory.services import indexes

    monkeypatch.setattr(indexes, "SHARED_INDEX_SHARE", 1.1)
    monkeypatch.setattr(indexes, "DROP_ABOVE_SHARE", 1.1)


@pytest.fixture
def asgi_server(transactional_db: Any) -> Any:
    """The site's ASGI application (engramia_site.asgi) on a real uvicorn server in a thread.

    What `engramia serve` runs, minus gunicorn: use it where behaviour depends on ASGI (streamed
    responses, mounted apps). Yields the base URL.
    """
    import socket
    import threading
    import time

    import uvicorn

    from engramia_site.asgi import application

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(application, lifespan="auto", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the ASGI test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)
    listener.close()
