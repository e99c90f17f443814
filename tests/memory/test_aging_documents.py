"""Aging is idempotent; documents are chunked, embedded and searched within the project."""

from datetime import timedelta

from django.utils import timezone

from memory.models import Chunk, Document, Pattern
from memory.services import add_evaluation, learn_pattern, run_aging


def test_aging_decays_toward_neutral_archives_stale_low_value_and_is_idempotent(project_a):
    old = timezone.now() - timedelta(days=400)
    good = learn_pattern(
        project=project_a, task="good old answer", code="c", created_at=old, actor=None
    )
    bad = learn_pattern(
        project=project_a, task="bad old answer", code="c", created_at=old, actor=None
    )
    for result, score in ((good, 9.0), (bad, 1.0)):
        evaluation = add_evaluation(
            pattern=Pattern.objects.get(pk=result.pattern_id), score=score, actor=None
        )
        type(evaluation).objects.filter(pk=evaluation.pk).update(created_at=old)
        Pattern.objects.filter(pk=result.pattern_id).update(last_evaluated_at=old)
    now = timezone.now()
    assert run_aging(project=project_a, now=now, actor=None) == {"decayed": 2, "archived": 1}
    good_row = Pattern.objects.get(pk=good.pattern_id)
    assert 5.0 < good_row.decayed_eval_score < 9.0 and not good_row.archived
    assert Pattern.objects.get(pk=bad.pattern_id).archived
    assert run_aging(project=project_a, now=now, actor=None) == {"decayed": 0, "archived": 0}
    assert run_aging(project=project_a, now=now + timedelta(minutes=5), actor=None) == {
        "decayed": 0,
        "archived": 0,
    }


def test_aging_endpoint(editor, reader):
    assert reader.client().post("/v1/aging", {}, format="json").status_code == 403
    response = editor.client().post("/v1/aging", {}, format="json")
    assert response.status_code == 200 and response.json() == {"decayed": 0, "archived": 0}
    assert editor.client().post("/v1/aging", {"all": True}, format="json").status_code == 400


MANUAL = "\n\n".join(
    [
        "# Billing\n\nInvoices are generated on the first day of each month.",
        "Refunds are processed within five business days after approval by finance. " * 20,
        "# Shipping\n\nParcels ship from the Rotterdam warehouse with tracking numbers.",
    ]
)


def test_documents_json_upload_search_and_delete(editor, outsider):
    client = editor.client()
    created = client.post(
        "/v1/documents",
        {"name": "manual.md", "text": MANUAL, "content_type": "text/markdown"},
        format="json",
    )
    assert created.status_code == 201
    document_id = created.json()["id"]
    assert (
        created.json()["chunk_count"] == Chunk.objects.filter(document_id=document_id).count() >= 2
    )
    recall = client.post(
        "/v1/recall",
        {"task": "when are refunds processed", "include_documents": True},
        format="json",
    ).json()
    assert recall["documents"][0]["document_id"] == document_id
    assert "Refunds" in recall["documents"][0]["text"]
    listed = client.get("/v1/documents").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "manual.md"
    assert outsider.client().get("/v1/documents").json()["count"] == 0
    assert outsider.client().delete(f"/v1/documents/{document_id}").status_code == 404
    assert client.delete(f"/v1/documents/{document_id}").status_code == 204
    assert not Chunk.objects.filter(document_id=document_id).exists()


def test_documents_multipart_upload_and_bad_files(editor):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = editor.client()
    upload = SimpleUploadedFile(
        "notes.txt", b"Line one.\n\nLine two about kubernetes.", content_type="text/plain"
    )
    response = client.post("/v1/documents", {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["name"] == "notes.txt"
    binary = SimpleUploadedFile(
        "blob.bin", b"\xff\xfe\x00\x81", content_type="application/octet-stream"
    )
    refused = client.post("/v1/documents", {"file": binary}, format="multipart")
    assert refused.status_code == 400 and refused.json()["errors"][0]["attr"] == "file"
    empty = client.post("/v1/documents", {"name": "e", "text": "   "}, format="json")
    assert empty.status_code == 400
    assert Document.objects.count() == 1


def test_pdf_upload_extracts_every_page_and_refuses_broken_or_textless_pdfs(editor):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fakes.pdf import make_pdf

    client = editor.client()
    pdf = make_pdf(
        [
            ["Signing keys (the JWT ones) rotate every 90 days.", "Old keys stay valid a week."],
            ["Refunds are processed within five business days."],
        ]
    )
    response = client.post(
        "/v1/documents",
        {"file": SimpleUploadedFile("policy.pdf", pdf, content_type="application/pdf")},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    document = Document.objects.get(pk=response.json()["id"])
    text = " ".join(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert "rotate every 90 days" in text and "(the JWT ones)" in text
    assert "within five business days" in text
    recall = client.post(
        "/v1/recall",
        {"task": "how often do signing keys rotate", "include_documents": True},
        format="json",
    ).json()
    assert recall["documents"][0]["document_id"] == document.pk

    truncated = SimpleUploadedFile("broken.pdf", pdf[:200], content_type="application/pdf")
    refused = client.post("/v1/documents", {"file": truncated}, format="multipart")
    assert refused.status_code == 400, refused.content
    assert refused.json()["errors"][0]["attr"] == "file"
    assert "PDF" in refused.json()["errors"][0]["detail"]
    textless = SimpleUploadedFile("scan.pdf", make_pdf([[]]), content_type="application/pdf")
    refused = client.post("/v1/documents", {"file": textless}, format="multipart")
    assert refused.status_code == 400, refused.content
    assert "no text layer" in refused.json()["errors"][0]["detail"]
    assert Document.objects.count() == 1
