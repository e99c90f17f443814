"""A schema-driven fuzz run: every /v1 operation in /v1/schema, against the live site.

Schemathesis generates requests from the OpenAPI document the site serves (its examples,
coverage and fuzzing phases, valid and invalid data alike) and sends them to the ASGI
application on a real uvicorn server, as a tenant-wide owner key naming the project. Every
built-in check applies: a 5xx, a status code the schema does not list, a body that does not
match its schema, a schema-valid request refused or an invalid one accepted, a wrong Allow
header or content type all fail the run. Half the requests to `/{id}` routes name a real
object of the project (a fresh one for DELETE), so the fuzz reaches past the 404.

Bounded and repeatable: a fixed seed, derandomized generation and MAX_EXAMPLES per operation.
No operation is skipped: the LLM judge of /v1/evaluate is a loopback fake. The stateful phase
(chains of linked calls) is off: the schema declares no links. What the schema cannot state is
listed below (SCHEMA_CANNOT_SAY, SESSION_ACTION_ROUTES) with the reason. Deselect with
`-m "not fuzz"`.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from tests.fakes.llm_servers import FakeLLMServer

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = 25
SEED = 20261129
SESSION = "fuzz/session"

# Rules a schema-valid request can still break, which OpenAPI 3.0 cannot state: these
# operations may answer such a request with a 400 (each names the field and the reason).
SCHEMA_CANNOT_SAY = {
    "POST /v1/keys": "expires_at must be in the future",
    "PATCH /v1/project": "a read_path change needs a reason (a dependency between fields), and "
    "embedding_model must be a model this deployment can load",
    "POST /v1/documents": "an uploaded file must be UTF-8 text, markdown or a PDF",
    "GET /v1/skills": "at most 32 tags in all, counting those separated by commas",
    # A generated object for `parameters` is rarely a valid JSON Schema (draft 2020-12), e.g.
    # {"minimum": {...}}: the 400 names `parameters` and the rule it breaks.
    "POST /v1/skills": "parameters must be a valid JSON Schema whose top level is an object",
    "PATCH /v1/skills/{id}": "parameters must be a valid JSON Schema whose top level is an object",
}
# DELETE on these routes is the clear of the session whose id ends in /items or /pop
# (conversations.api.urls: a decoded %2F cannot be told from a path separator), not a method
# the routes lack; every other undeclared method must still be a 405.
SESSION_ACTION_ROUTES = "^/v1/sessions/\\{session_id\\}/(items|pop)$"
UNDECLARED_METHODS = ["GET", "PUT", "POST", "PATCH", "TRACE"]
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
            # PostgreSQL cannot store U+0000: every endpoint refuses it with a 400 that the
            # schema's descriptions name (tests/tenants/test_bad_input_text.py covers it).
            "allow-x00": False,
            # The key is sent as a header of every request (FuzzTarget.headers), never generated.
            "with-security-parameters": False,
        },
        # A tenant-wide key: every request names the project.
        "parameters": {"header.X-Engramia-Project": "support"},
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            *(
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [*POSITIVE_STATUSES, "400"]
                        }
                    },
                }
                for name in SCHEMA_CANNOT_SAY
            ),
            {
                "include-path-regex": SESSION_ACTION_ROUTES,
                "phases": {"coverage": {"unexpected-methods": UNDECLARED_METHODS}},
            },
        ],
    }
)
# What /v1/schema serves (test_the_fuzzed_schema_is_the_served_one checks it is the same).
API_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(API_SCHEMA, config=CONFIG)


# An import body is bytes, sent as generated (the importer reports lines that are not records).
schemathesis.serializer.alias(
    ["application/x-ndjson", "application/jsonl"], "application/octet-stream"
)


@dataclass
class FuzzTally:
    """What the run sent: operations, cases, statuses."""

    started: float = field(default_factory=time.monotonic)
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        counts = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"schema fuzz: {len(self.operations)} operations, {self.statuses.total()} cases "
            f"in {seconds:.0f} s ({counts})"
        )


@dataclass
class FuzzTarget:
    """The live site, the key the fuzz acts with, and the project's real objects by route."""

    base_url: str
    headers: dict[str, str]
    seeded: dict[str, int]
    fresh: dict[str, Callable[[], int]]
    tally: FuzzTally


def _make_objects(owner: Any) -> tuple[dict[str, int], dict[str, Callable[[], int]]]:
    from conversations.services import add_session_items
    from jobs.services import submit_job
    from memory.services import add_document, learn_pattern
    from skills.services import register_skill
    from tenants.services import create_api_key

    project, serial = owner.project, iter(range(1_000_000))

    def pattern() -> int:
        n = next(serial)
        result = learn_pattern(
            project=project, task=f"parse csv {n}", code=f"csv.reader({n})", actor=None
        )
        return int(result.pattern_id)

    def document() -> int:
        return int(add_document(project=project, name="notes.md", text="csv notes", actor=None).pk)

    def job() -> int:
        return int(submit_job(project=project, kind="aging", params={}, actor=owner.user).pk)

    def skill() -> int:
        name = f"tool_{next(serial)}"
        return int(register_skill(project=project, name=name, actor=owner.user).pk)

    def key() -> int:
        issued = create_api_key(
            user=owner.user,
            tenant=project.tenant,
            project=project,
            name=f"spare-{next(serial)}",
            role="reader",
            actor=None,
        )
        return int(issued.key.pk)

    add_session_items(
        project=project, session_id=SESSION, items=[{"role": "user", "content": "hi"}], actor=None
    )
    fresh = {"patterns": pattern, "documents": document, "jobs": job, "skills": skill, "keys": key}
    return {route: make() for route, make in fresh.items()}, fresh


@pytest.fixture(scope="module")
def fuzz_tally(request: Any) -> Iterator[FuzzTally]:
    """Counts over the whole run, printed at its end."""
    tally = FuzzTally()
    yield tally
    # Past the output capture, so a plain `make test` shows what the run covered.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{tally.summary()}")


@pytest.fixture(scope="module")
def fake_providers() -> Iterator[None]:
    """Both LLM vendors on a loopback fake: /v1/evaluate judges, and nothing leaves the machine."""
    verdict = json.dumps({"score": 7, "feedback": "Readable."})
    with FakeLLMServer(default=verdict) as fake, pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGRAMIA_LLM", "openai")
        patch.setenv("OPENAI_API_KEY", "sk-fuzz")
        patch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        patch.setenv("ANTHROPIC_API_KEY", "sk-ant-fuzz")
        patch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
        yield


@pytest.fixture
def fuzz_target(
    asgi_server: str, owner: Any, fake_providers: None, fuzz_tally: FuzzTally
) -> FuzzTarget:
    from tenants.services import create_api_key

    issued = create_api_key(
        user=owner.user,
        tenant=owner.project.tenant,
        project=None,
        name="fuzz",
        role="owner",
        actor=None,
    )
    seeded, fresh = _make_objects(owner)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    return FuzzTarget(asgi_server, headers, seeded, fresh, fuzz_tally)


def _aim_at_real_objects(case: Any, target: FuzzTarget) -> None:
    """For half the valid cases (chosen by their content, so runs repeat), name a real object."""
    parameters = case.path_parameters or {}
    if case.meta is None or not case.meta.generation.mode.is_positive or not parameters:
        return
    if zlib.crc32(repr(sorted(parameters.items())).encode()) % 2:
        return
    route = case.operation.path.split("/")[2]
    if "session_id" in parameters:
        parameters["session_id"] = SESSION
    elif route in target.seeded:
        fresh = case.method == "DELETE" or case.operation.path.endswith("/rotate")
        parameters["id"] = target.fresh[route]() if fresh else target.seeded[route]


@schema.parametrize()
@settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    deadline=None,
)
def test_no_operation_errs_or_breaks_its_schema(case: Any, fuzz_target: FuzzTarget) -> None:
    _aim_at_real_objects(case, fuzz_target)
    response = case.call_and_validate(base_url=fuzz_target.base_url, headers=fuzz_target.headers)
    fuzz_target.tally.operations.add(case.operation.label)
    fuzz_target.tally.statuses[response.status_code] += 1


def test_the_fuzzed_schema_is_the_served_one(live_server: Any) -> None:
    served = httpx.get(f"{live_server.url}/v1/schema?format=json", timeout=30)
    assert served.status_code == 200
    assert served.json() == API_SCHEMA
