"""Changing a project's embedding model: PATCH /v1/project starts a re-embedding job.

The job stages new-model vectors while recall keeps using the old ones, swaps them in with the
project in one audited transaction, and sweeps rows written with the old model meanwhile.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.models import Job
from jobs.runner import execute_job
from jobs.services import cancel_job, recover_stale_jobs, run_job_inline
from memory.models import Chunk, Pattern, StagedEmbedding
from memory.services import add_document, learn_pattern, update_pattern
from memory.services import reembedding as reembedding_module
from memory.services.learn_bulk import LearnItem, learn_patterns_bulk
from memory.services.reembedding import start_reembedding
from retrieval.embeddings import get_embedder
from skills.models import Skill
from skills.services import embedding_text, register_skill
from tenants.keyscope import forget_key_scopes
from tenants.models import AuditEntry, Project

OLD, NEW, LOCAL = "hash:384", "hash:256", "local:all-MiniLM-L6-v2"
TASKS = {
    "csv": "Parse a CSV file into a list of dictionaries",
    "mail": "Send an email with an attachment over SMTP",
    "image": "Resize every image in a folder to a thumbnail",
}
MANUAL = "\n\n".join(
    [
        "Refunds are issued within 14 days of a returned order. " * 20,
        "Shipping to islands takes an extra three working days. " * 20,
        "Gift cards never expire and can be combined with discounts. " * 20,
    ]
)


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: escapes the runner like a dead process, leaving the job running."""


def seed(project, owner):
    """Three patterns, a document of several chunks and a project skill, all under OLD."""
    ids = {
        key: learn_pattern(
            project=project, task=task, code=f"solution {key}", actor=None
        ).pattern_id
        for key, task in TASKS.items()
    }
    document = add_document(project=project, name="manual.md", text=MANUAL, actor=None)
    register_skill(
        actor=owner.user, project=project, name="refund_order", description="Refund an order"
    )
    assert document.chunk_count >= 3
    return ids


def models_in_use(project):
    return {
        name: set(model.objects.filter(project=project).values_list("embedding_model", flat=True))
        for name, model in (("patterns", Pattern), ("chunks", Chunk), ("skills", Skill))
    }


def assert_all_under(project, model):
    assert models_in_use(project) == {"patterns": {model}, "chunks": {model}, "skills": {model}}
    embedder = get_embedder(model)
    for pattern in Pattern.objects.filter(project=project):
        expected = embedder.embed_documents([pattern.task])[0]
        assert np.allclose(pattern.embedding, expected, atol=1e-5), pattern.task
    for chunk in Chunk.objects.filter(project=project):
        assert np.allclose(chunk.embedding, embedder.embed_documents([chunk.text])[0], atol=1e-5)
    for skill in Skill.objects.filter(project=project):
        text = embedding_text(skill.name, skill.description, skill.tags)
        assert np.allclose(skill.embedding, embedder.embed_documents([text])[0], atol=1e-5)


def top_hit(client, task):
    response = client.post(
        "/v1/recall", {"task": task, "limit": 3, "include_documents": True}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    return body["matches"][0]["pattern_id"], body["documents"]


def test_admin_moves_a_project_to_another_model_with_a_job(owner):
    project = owner.project
    ids = seed(project, owner)
    client = owner.client()

    response = client.patch(
        "/v1/project", {"embedding_model": "local", "name": "Support desk"}, format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["url"] == f"/v1/jobs/{body['job_id']}"
    assert body["status"] == "pending" and body["project"]["name"] == "Support desk"
    job = Job.objects.get(pk=body["job_id"])
    assert job.kind == "reembed" and job.actor == owner.user
    assert job.params == {"embedding_model": LOCAL, "previous_model": OLD}
    # Nothing switches before the job has run: the project and recall stay on the old model.
    assert client.get("/v1/project").json()["embedding_model"] == OLD
    assert top_hit(client, TASKS["csv"])[0] == ids["csv"]

    finished = run_job_inline(job)

    assert finished.status == "succeeded", finished.error
    assert finished.result["switched"] == {"pattern": 3, "chunk": Chunk.objects.count(), "skill": 1}
    assert (finished.progress_done, finished.progress_total) == (3 + Chunk.objects.count() + 1,) * 2
    assert client.get("/v1/project").json()["embedding_model"] == LOCAL
    assert_all_under(project, LOCAL)
    assert not StagedEmbedding.objects.exists()
    # A paraphrase only a real language model connects to its pattern.
    assert top_hit(client, "read comma separated values into dicts")[0] == ids["csv"]
    assert top_hit(client, "how long do refunds take")[1][0]["chunk_index"] == 0
    entry = AuditEntry.objects.get(
        content_type__model="project",
        object_pk=str(project.pk),
        action=AuditEntry.Action.UPDATE,
        changes__has_key="embedding_model",
    )
    assert entry.changes["embedding_model"] == [OLD, LOCAL]
    assert entry.actor == owner.user and entry.api_key_name == owner.key.name
    assert entry.additional_data["reason"] == f"re-embedding job {job.pk}"


@pytest.mark.parametrize(
    "name", ["nope", "hash:abc", "local:some-other-model", "hash:4", "hash:20000", "openai:x"]
)
def test_an_unknown_model_is_a_400_naming_the_field(owner, name):
    response = owner.client().patch(
        "/v1/project", {"embedding_model": name, "name": "renamed"}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["errors"][0]
    assert error["attr"] == "embedding_model" and error["detail"]
    assert not Job.objects.exists()
    assert Project.objects.get(pk=owner.project.pk).name != "renamed"


def test_openai_without_an_api_key_is_a_400_that_says_so(owner, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    response = owner.client().patch(
        "/v1/project", {"embedding_model": "openai:text-embedding-3-small"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["attr"] == "embedding_model" and "OPENAI_API_KEY" in error["detail"]


def test_the_current_model_in_any_spelling_is_a_200_without_a_job(owner):
    for spelling in ("hash", OLD, " HASH:384 "):
        response = owner.client().patch(
            "/v1/project", {"embedding_model": spelling, "instructions": "be brief"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["embedding_model"] == OLD
        assert response.json()["instructions"] == "be brief"
    assert not Job.objects.exists()


def test_a_second_change_while_one_is_pending_is_a_409(owner):
    client = owner.client()
    first = client.patch("/v1/project", {"embedding_model": NEW}, format="json")
    assert first.status_code == 202

    for name in ("hash:128", NEW, OLD):
        refused = client.patch(
            "/v1/project", {"embedding_model": name, "name": "renamed"}, format="json"
        )
        assert refused.status_code == 409, refused.content
        assert f"job {first.json()['job_id']}" in refused.json()["errors"][0]["detail"]
    assert Job.objects.count() == 1
    assert Project.objects.get(pk=owner.project.pk).name != "renamed"

    cancel_job(Job.objects.get(pk=first.json()["job_id"]), actor=None)
    again = client.patch("/v1/project", {"embedding_model": "hash:128"}, format="json")
    assert again.status_code == 202


@pytest.mark.parametrize("persona", ["reader", "editor"])
def test_readers_and_editors_cannot_change_the_model(request, persona):
    client = request.getfixturevalue(persona).client()
    response = client.patch("/v1/project", {"embedding_model": NEW}, format="json")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_recall_keeps_the_old_model_until_the_swap_and_a_retry_resumes(owner, monkeypatch):
    project = owner.project
    ids = seed(project, owner)
    extra = [
        learn_pattern(project=project, task=task, code="c", actor=None).pattern_id
        for task in (
            "Rotate log files daily",
            "Back up the database nightly",
            "Rename files by their date",
            "Validate an email address",
        )
    ]
    rows = Pattern.objects.count() + Chunk.objects.count() + 1
    monkeypatch.setattr(reembedding_module, "BATCH_SIZE", 2)
    embedder = get_embedder(NEW)
    real_embed = embedder.embed_documents
    embedded: list[str] = []

    def dies_on_the_third_batch(texts):
        if len(embedded) >= 4:
            raise WorkerKilled()
        embedded.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(embedder, "embed_documents", dies_on_the_third_batch)
    job = start_reembedding(project=project, embedding_model=NEW, actor=owner.user, enqueue=False)
    with pytest.raises(WorkerKilled):
        execute_job(job.pk)

    crashed = Job.objects.get(pk=job.pk)
    assert crashed.status == "running" and crashed.attempts == 1
    assert crashed.checkpoint == {"kind": "pattern", "after": extra[0], "done": 4}
    assert StagedEmbedding.objects.filter(project=project, embedding_model=NEW).count() == 4
    # Mid-job, everything still reads and writes the old model, and recall finds the right rows.
    assert Project.objects.get(pk=project.pk).embedding_model == OLD
    assert models_in_use(project) == {"patterns": {OLD}, "chunks": {OLD}, "skills": {OLD}}
    client = owner.client()
    assert top_hit(client, TASKS["image"])[0] == ids["image"]
    assert top_hit(client, "Rename files by their date")[0] == extra[2]
    # Meanwhile a curator edits a pattern that is already staged, and an agent learns one more.
    update_pattern(
        pattern=Pattern.objects.get(pk=ids["csv"]),
        changes={"task": "Parse a TSV file quickly"},
        actor=None,
    )
    late = learn_pattern(
        project=project, task="Compress a directory into a zip", code="z", actor=None
    )

    # The worker is presumed dead; the sweep puts the job back and a new attempt resumes it.
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    assert recover_stale_jobs().requeued == [job.pk]
    monkeypatch.setattr(embedder, "embed_documents", real_embed)
    counted: list[str] = []

    def counting(texts):
        counted.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(embedder, "embed_documents", counting)
    finished = run_job_inline(Job.objects.get(pk=job.pk))

    assert finished.status == "succeeded", finished.error
    assert finished.attempts == 2
    # Resumed after the 4 staged rows (not from the start), plus the late pattern; the edited
    # pattern's staged vector no longer matched its text and was re-embedded inside the swap.
    assert finished.result["embedded"] == rows + 1 - 4
    assert finished.result["embedded_at_swap"] == 1
    assert "Parse a TSV file quickly" in counted
    assert TASKS["mail"] not in counted
    assert_all_under(project, NEW)
    assert top_hit(client, "Parse a TSV file quickly")[0] == ids["csv"]
    assert top_hit(client, "Compress a directory into a zip")[0] == late.pattern_id
    assert not StagedEmbedding.objects.exists()


def test_rows_learned_during_the_swap_are_embedded_there_or_swept_after(owner, monkeypatch):
    project = owner.project
    seed(project, owner)
    real_swap = reembedding_module._swap
    racing: dict[str, int] = {}

    def swap_with_a_race(job, embedder):
        # Learned while staging ended: the swap itself finds it has no staged vector.
        racing["before"] = learn_pattern(
            project=Project.objects.get(pk=project.pk), task="Before the swap", code="b", actor=None
        ).pattern_id
        outcome = real_swap(job, embedder)
        # A request that loaded the project (and embedded) before the swap stores after it:
        # it re-reads the model in its own transaction and embeds again with the new one.
        stale = Project.objects.get(pk=project.pk)
        stale.embedding_model = OLD
        racing["after"] = learn_pattern(
            project=stale, task="After the swap", code="a", actor=None
        ).pattern_id
        add_document(
            project=stale, name="late.md", text="A late document about invoices.", actor=None
        )
        return outcome

    monkeypatch.setattr(reembedding_module, "_swap", swap_with_a_race)
    job = start_reembedding(project=project, embedding_model=NEW, enqueue=False, actor=None)
    finished = run_job_inline(job)

    assert finished.status == "succeeded", finished.error
    assert finished.result["embedded_at_swap"] == 1
    assert finished.result["swept"] == 0  # the late pattern and chunk came in on the new model
    assert_all_under(project, NEW)
    client = owner.client()
    assert top_hit(client, "Before the swap")[0] == racing["before"]
    assert top_hit(client, "After the swap")[0] == racing["after"]


def test_a_write_prepared_under_the_old_model_is_stored_under_the_current_one(owner):
    project = owner.project
    stale = Project.objects.get(pk=project.pk)  # loaded, and about to embed, before the switch
    Project.objects.filter(pk=project.pk).update(embedding_model="hash:256")
    learned = learn_pattern(project=stale, task="Rotate the signing keys", code="k", actor=None)
    bulk = learn_patterns_bulk(
        project=stale,
        items=[LearnItem(task="Rotate the API keys", code="k", external_id="bulk-1")],
        actor=None,
    )
    document = add_document(
        project=stale, name="keys.md", text="Keys rotate every 90 days.", actor=None
    )
    skill = register_skill(
        actor=owner.user, project=stale, name="rotate_keys", description="Rotate signing keys"
    )
    rows = [
        Pattern.objects.get(pk=learned.pattern_id),
        Pattern.objects.get(pk=bulk.pattern_ids[0]),
        *Chunk.objects.filter(document=document),
        Skill.objects.get(pk=skill.pk),
    ]
    assert {row.embedding_model for row in rows} == {"hash:256"}
    assert {len(row.embedding) for row in rows} == {256}


def test_cancelling_before_the_swap_leaves_the_old_model_and_no_staged_rows(owner, monkeypatch):
    project = owner.project
    seed(project, owner)
    monkeypatch.setattr(reembedding_module, "BATCH_SIZE", 1)
    job = start_reembedding(project=project, embedding_model=NEW, enqueue=False, actor=None)
    embedder = get_embedder(NEW)
    real_embed = embedder.embed_documents

    def cancel_after_first_batch(texts):
        cancel_job(Job.objects.get(pk=job.pk), actor=None)
        return real_embed(texts)

    monkeypatch.setattr(embedder, "embed_documents", cancel_after_first_batch)
    finished = run_job_inline(job)

    assert finished.status == "cancelled"
    assert Project.objects.get(pk=project.pk).embedding_model == OLD
    assert models_in_use(project) == {"patterns": {OLD}, "chunks": {OLD}, "skills": {OLD}}
    assert not StagedEmbedding.objects.exists()


def test_the_cli_runs_the_job_and_reports(owner, capsys):
    project = owner.project
    seed(project, owner)

    call_command("reembed", "--project", project.path, "--model", NEW)

    out = capsys.readouterr().out
    assert f"{project.path}: {OLD} -> {NEW}: patterns 3, chunks " in out
    assert Project.objects.get(pk=project.pk).embedding_model == NEW
    assert_all_under(project, NEW)
    entry = AuditEntry.objects.get(
        content_type__model="project",
        object_pk=str(project.pk),
        action=AuditEntry.Action.UPDATE,
        changes__has_key="embedding_model",
    )
    assert entry.actor_email.startswith("cli:")

    call_command("reembed", "--project", project.path, "--model", "hash:256")
    assert "already uses hash:256" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--model: unknown embedder"):
        call_command("reembed", "--project", project.path, "--model", "word2vec")
    call_command("reembed", "--project", project.path, "--model", OLD, "--queue", "--json")
    assert '"status": "pending"' in capsys.readouterr().out
    with pytest.raises(CommandError, match="already being re-embedded"):
        call_command("reembed", "--project", project.path, "--model", "hash:128")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job_the_patch_queued(owner, tmp_path):
    from tests.jobs.conftest import Worker, wait_for

    project = owner.project
    ids = seed(project, owner)
    client = owner.client()
    worker = Worker(tmp_path / "worker.log")
    try:
        response = client.patch("/v1/project", {"embedding_model": NEW}, format="json")
        assert response.status_code == 202, response.content

        def poll():
            body = client.get(response["Location"]).json()
            return body if body["status"] in ("succeeded", "failed", "cancelled") else None

        body = wait_for(poll, timeout=60, what="the reembed job", log=worker.log_tail)
    finally:
        worker.stop()
    assert body["status"] == "succeeded", body["error"]
    # The worker is another process: this one's kept key row (with the project) may be up to
    # API_KEY_CACHE_SECONDS old (tenants.keyscope); the test does not wait that long.
    forget_key_scopes()
    assert client.get("/v1/project").json()["embedding_model"] == NEW
    assert_all_under(project, NEW)
    assert top_hit(client, TASKS["mail"])[0] == ids["mail"]
    entry = AuditEntry.objects.get(
        content_type__model="project",
        object_pk=str(project.pk),
        action=AuditEntry.Action.UPDATE,
        changes__has_key="embedding_model",
    )
    assert entry.actor == owner.user and entry.api_key_name == owner.key.name
