"""Documents are bounded: the body before it is read, a PDF while it is read (pages, inflated
bytes, text, time, memory, in a child process), and async requests only store the content for
their job, which reads it. Every bound gives a 400 (or a failed job) saying which."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from jobs.models import Job, Upload
from jobs.services import run_job_inline
from memory.models import Chunk, Document
from memory.services.documents import MAX_DOCUMENT_CHARS
from tests.fakes.pdf import make_flate_bomb_pdf, make_pdf, make_slow_pdf

ASYNC = {"HTTP_PREFER": "respond-async"}
POLICY = [["Refunds are processed within five business days."], ["Keys rotate every 90 days."]]


def _pdf_upload(client: Any, pdf: bytes, **extra: Any) -> Any:
    upload = SimpleUploadedFile("policy.pdf", pdf, content_type="application/pdf")
    return client.post("/v1/documents", {"file": upload}, format="multipart", **extra)


def _refusal(response: Any) -> tuple[int, str | None, str]:
    (error,) = response.json()["errors"]
    return response.status_code, error["attr"], error["detail"]


def _document_text(document_id: int) -> str:
    return " ".join(Chunk.objects.filter(document_id=document_id).values_list("text", flat=True))


# Item 8: the body is capped before it is read, and large content never sits in Job.params.


def test_the_document_cap_fits_the_character_limit_and_stays_below_imports():
    assert settings.MAX_DOCUMENT_BYTES >= 6 * MAX_DOCUMENT_CHARS  # every character \u-escaped
    assert settings.MAX_DOCUMENT_BYTES < settings.MAX_IMPORT_BYTES


@override_settings(MAX_DOCUMENT_BYTES=64 * 1024, MAX_REQUEST_BYTES=4096)
def test_a_document_body_over_its_own_cap_is_a_413(editor):
    client = editor.client()
    big = client.post("/v1/documents", {"name": "n", "text": "x" * 70_000}, format="json")
    assert big.status_code == 413 and big.json()["errors"][0]["code"] == "request_too_large"
    upload = SimpleUploadedFile("big.txt", b"x" * 70_000, content_type="text/plain")
    big_file = client.post("/v1/documents", {"file": upload}, format="multipart")
    assert big_file.status_code == 413
    # Under the documents cap (though over the small routes' one) is fine.
    fits = client.post("/v1/documents", {"name": "n", "text": "word " * 2000}, format="json")
    assert fits.status_code == 201
    assert Document.objects.count() == 1 and not Job.objects.exists()


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
def test_text_over_the_character_limit_is_a_400_before_any_job(editor, prefer):
    body = {"name": "n", "text": "x" * (MAX_DOCUMENT_CHARS + 1)}
    response = editor.client().post("/v1/documents", body, format="json", **prefer)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "text"
    assert not Job.objects.exists() and not Upload.objects.exists()


def test_an_async_json_document_is_stored_apart_from_its_job(editor):
    text = "Refunds take five days.\n\n" * 200
    response = editor.client().post(
        "/v1/documents",
        {"name": "faq.md", "text": text, "external_id": "faq"},
        format="json",
        **ASYNC,
    )
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    assert "Refunds" not in json.dumps(job.params) and "text" not in job.params
    assert bytes(Upload.objects.get(pk=job.params["upload_id"]).data).decode() == text
    run_job_inline(job)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    document = Document.objects.get(pk=job.result["id"])
    assert document.external_id == "faq" and "five days" in _document_text(document.pk)
    assert not Upload.objects.exists()


# Item 7: PDFs are read in a bounded child process; async requests only store the upload.


def test_a_normal_pdf_is_read_synchronously_and_as_a_job(editor):
    client = editor.client()
    now = _pdf_upload(client, make_pdf(POLICY, compress=True))
    assert now.status_code == 201, now.content
    assert "five business days" in _document_text(now.json()["id"])
    later = _pdf_upload(client, make_pdf(POLICY), **ASYNC)
    assert later.status_code == 202
    job = Job.objects.get(pk=later.json()["job_id"])
    assert set(job.params) == {"upload_id", "file"}  # no bytes and no text in the jobs table
    assert job.params["file"] == {"file_name": "policy.pdf", "file_type": "application/pdf"}
    run_job_inline(job)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert "every 90 days" in _document_text(job.result["id"])
    assert not Upload.objects.exists()


@override_settings(PDF_MAX_DECOMPRESSED_BYTES=4 * 1024 * 1024)
def test_a_decompression_bomb_is_a_400_naming_the_bound(editor):
    response = _pdf_upload(editor.client(), make_flate_bomb_pdf(24 * 1024 * 1024))
    status, attr, detail = _refusal(response)
    assert (status, attr) == (400, "file")
    assert detail == "the PDF's streams inflate to more than 4194304 bytes"
    many_streams = _pdf_upload(editor.client(), make_flate_bomb_pdf(12 * 1024 * 1024, pages=12))
    assert _refusal(many_streams)[2] == detail  # the bound is on the whole file
    assert not Document.objects.exists()


@override_settings(PDF_MAX_PAGES=100)
def test_a_pdf_with_too_many_pages_is_a_400(editor):
    response = _pdf_upload(editor.client(), make_pdf([["page"]] * 300, compress=True))
    assert _refusal(response) == (400, "file", "the PDF has 300 pages; the limit is 100")


@override_settings(PDF_MAX_TEXT_BYTES=2048)
def test_a_pdf_with_too_much_text_is_a_400(editor):
    response = _pdf_upload(editor.client(), make_pdf([["x" * 80] * 40] * 2))
    assert _refusal(response) == (400, "file", "the PDF holds more than 2048 bytes of text")


@override_settings(PDF_MAX_SECONDS=1)
def test_a_pdf_that_takes_too_long_is_a_400_and_its_reader_is_stopped(editor):
    # About fifteen seconds of parsing: the child reading it is killed when the second is up.
    response = _pdf_upload(editor.client(), make_slow_pdf(200_000))
    assert _refusal(response) == (400, "file", "reading the PDF took longer than 1 seconds")


@override_settings(PDF_MAX_DECOMPRESSED_BYTES=2**30, PDF_MAX_MEMORY_BYTES=256 * 1024**2)
def test_a_pdf_needing_more_memory_than_allowed_is_a_400(editor):
    response = _pdf_upload(editor.client(), make_flate_bomb_pdf(400 * 1024 * 1024))
    assert _refusal(response) == (
        400,
        "file",
        "reading the PDF needs more memory than allowed",
    )


@override_settings(PDF_MAX_DECOMPRESSED_BYTES=4 * 1024 * 1024)
def test_an_async_bomb_is_accepted_unread_and_its_job_fails_with_the_reason(editor):
    response = _pdf_upload(editor.client(), make_flate_bomb_pdf(24 * 1024 * 1024), **ASYNC)
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    run_job_inline(job)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == (
        "invalid input: file: the PDF's streams inflate to more than 4194304 bytes"
    )
    assert not Document.objects.exists() and not Upload.objects.exists()


def test_a_text_upload_holding_a_null_character_is_a_400(editor):
    upload = SimpleUploadedFile("notes.txt", b"one\x00two", content_type="text/plain")
    response = editor.client().post("/v1/documents", {"file": upload}, format="multipart")
    status, attr, detail = _refusal(response)
    assert (status, attr) == (400, "file") and "U+0000" in detail
    assert not Document.objects.exists()
