"""Files and vector stores backed by Engramia documents, and file_search with citations."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from assistants.openai.services import files as file_services
from memory.models import Document
from tests.assistants.openai.conftest import BASE, new_assistant, new_thread, run_jobs
from tests.fakes.llm_servers import Reply

POLICY = "# Refunds\n\nRefunds are paid within thirty days of the return.\n\nShipping is free."
POLICY_BYTES = POLICY.encode()


def upload(owner, name="policy.md", data=POLICY_BYTES, purpose="assistants"):
    client = owner.client()
    return client.post(
        f"{BASE}/files",
        {"file": SimpleUploadedFile(name, data), "purpose": purpose},
        format="multipart",
    )


def test_a_file_is_uploaded_listed_read_and_deleted(api, owner):
    response = upload(owner)
    assert response.status_code == 200, response.content
    file = response.json()
    assert file["id"].startswith("file-") and file["object"] == "file"
    assert (file["filename"], file["bytes"], file["purpose"], file["status"]) == (
        "policy.md",
        len(POLICY.encode()),
        "assistants",
        "processed",
    )
    assert [f["id"] for f in api("get", "/files").json()["data"]] == [file["id"]]
    assert api("get", "/files", QUERY_STRING="purpose=batch").json()["data"] == []
    assert api("get", f"/files/{file['id']}").json()["filename"] == "policy.md"
    content = api("get", f"/files/{file['id']}/content")
    assert content.content == POLICY.encode()
    assert api("delete", f"/files/{file['id']}").json() == {
        "id": file["id"],
        "object": "file",
        "deleted": True,
    }
    assert api("get", f"/files/{file['id']}").status_code == 404


def test_vision_files_are_refused_and_other_purposes_named(owner):
    vision = upload(owner, name="cat.png", data=b"\x89PNG", purpose="vision").json()["error"]
    assert (vision["param"], vision["code"]) == ("purpose", "unsupported_tool")
    other = upload(owner, purpose="fine-tune").json()["error"]
    assert other["param"] == "purpose"


def test_a_vector_store_indexes_its_files_as_documents_and_searches_them(api, owner):
    file = upload(owner).json()
    store = api("post", "/vector_stores", {"name": "Policies", "file_ids": [file["id"]]}).json()
    assert store["id"].startswith("vs_") and store["object"] == "vector_store"
    assert store["file_counts"] == {
        "in_progress": 0,
        "completed": 1,
        "cancelled": 0,
        "failed": 0,
        "total": 1,
    }
    assert store["status"] == "completed" and store["usage_bytes"] > 0
    document = Document.objects.get()
    assert (document.name, document.external_id) == ("policy.md", f"assistants-file:{file['id']}")
    member = api("get", f"/vector_stores/{store['id']}/files/{file['id']}").json()
    assert (member["object"], member["status"], member["vector_store_id"]) == (
        "vector_store.file",
        "completed",
        store["id"],
    )
    found = api("post", f"/vector_stores/{store['id']}/search", {"query": "refunds paid"}).json()
    assert found["object"] == "vector_store.search_results.page"
    assert found["data"][0]["file_id"] == file["id"]
    assert "thirty days" in found["data"][0]["content"][0]["text"]
    renamed = api("post", f"/vector_stores/{store['id']}", {"name": "Rules"}).json()
    assert renamed["name"] == "Rules"
    removed = api("delete", f"/vector_stores/{store['id']}/files/{file['id']}").json()
    assert removed["object"] == "vector_store.file.deleted"
    assert not Document.objects.exists()  # no other store held it
    assert api("delete", f"/vector_stores/{store['id']}").json()["deleted"] is True


def test_file_batches_report_their_files(api, owner):
    first, second = upload(owner).json(), upload(owner, name="b.txt", data=b"Second file.").json()
    store = api("post", "/vector_stores", {}).json()
    batch = api(
        "post",
        f"/vector_stores/{store['id']}/file_batches",
        {"file_ids": [first["id"], second["id"]]},
    ).json()
    assert batch["object"] == "vector_store.files_batch" and batch["status"] == "completed"
    assert batch["file_counts"]["completed"] == 2
    path = f"/vector_stores/{store['id']}/file_batches/{batch['id']}"
    assert api("get", path).json()["id"] == batch["id"]
    files = api("get", f"{path}/files").json()["data"]
    assert {f["id"] for f in files} == {first["id"], second["id"]}
    assert api("post", f"{path}/cancel").json()["status"] == "completed"  # nothing was pending


def test_a_large_file_is_indexed_by_a_job(api, owner, monkeypatch):
    monkeypatch.setattr(file_services, "INLINE_INDEX_BYTES", 10)
    file = upload(owner).json()
    store = api("post", "/vector_stores", {"file_ids": [file["id"]]}).json()
    assert store["status"] == "in_progress" and store["file_counts"]["in_progress"] == 1
    run_jobs("assistants_index_file")
    assert api("get", f"/vector_stores/{store['id']}").json()["file_counts"]["completed"] == 1


def test_a_file_that_is_not_text_fails_with_the_reason(api, owner):
    file = upload(owner, name="blob.bin", data=b"\x00\x01binary").json()
    store = api("post", "/vector_stores", {"file_ids": [file["id"]]}).json()
    member = api("get", f"/vector_stores/{store['id']}/files/{file['id']}").json()
    assert member["status"] == "failed" and member["last_error"]["code"] == "invalid_file"


def test_file_search_answers_with_file_citations(api, owner, llm):
    file = upload(owner).json()
    store = api("post", "/vector_stores", {"file_ids": [file["id"]]}).json()
    assistant = new_assistant(
        api,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store["id"]]}},
    )
    thread = new_thread(api, "How long do refunds take?")
    llm.enqueue(
        Reply.calling("file_search", {"query": "refund time"}),
        Reply(text="Within thirty days 【0†policy.md】."),
    )
    run = api("post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]}).json()
    run_jobs()
    assert api("get", f"/threads/{thread['id']}/runs/{run['id']}").json()["status"] == "completed"
    text = api("get", f"/threads/{thread['id']}/messages").json()["data"][0]["content"][0]["text"]
    assert text["value"] == "Within thirty days 【0†policy.md】."
    assert text["annotations"] == [
        {
            "type": "file_citation",
            "text": "【0†policy.md】",
            "start_index": 19,
            "end_index": 32,
            "file_citation": {"file_id": file["id"]},
        }
    ]
    tool_output = llm.requests[1].json["messages"][-1]
    assert tool_output["role"] == "tool" and tool_output["content"].startswith("【0†policy.md】")
    assert "thirty days" in tool_output["content"]
    assert "cite it" in llm.requests[0].json["messages"][0]["content"]
    steps = f"/threads/{thread['id']}/runs/{run['id']}/steps"
    plain = api("get", steps, QUERY_STRING="order=asc").json()["data"][0]
    call = plain["step_details"]["tool_calls"][0]
    assert call["type"] == "file_search" and "results" not in call["file_search"]
    include = "include[]=step_details.tool_calls[*].file_search.results[*].content"
    detailed = api("get", steps, QUERY_STRING=f"order=asc&{include}").json()["data"][0]
    result = detailed["step_details"]["tool_calls"][0]["file_search"]["results"][0]
    assert result["file_id"] == file["id"] and "thirty days" in json.dumps(result["content"])


def test_files_attached_to_a_message_are_searched_by_the_run(api, owner, llm):
    file = upload(owner).json()
    assistant = new_assistant(api, tools=[{"type": "file_search"}])
    thread = new_thread(api)
    message = api(
        "post",
        f"/threads/{thread['id']}/messages",
        {"role": "user", "content": "Refunds?", "attachments": [{"file_id": file["id"]}]},
    ).json()
    assert message["attachments"] == [{"file_id": file["id"], "tools": [{"type": "file_search"}]}]
    stores = api("get", f"/threads/{thread['id']}").json()["tool_resources"]["file_search"]
    assert len(stores["vector_store_ids"]) == 1
    llm.enqueue(Reply.calling("file_search", {"query": "refunds"}), Reply(text="30 days."))
    api("post", f"/threads/{thread['id']}/runs", {"assistant_id": assistant["id"]})
    run_jobs()
    assert "thirty days" in llm.requests[1].json["messages"][-1]["content"]


def test_unknown_files_and_stores_are_named_in_the_refusal(api):
    refused = api("post", "/vector_stores", {"file_ids": ["file-nope"]}).json()["error"]
    assert refused["param"] == "file_ids[0]"
    store_refused = api(
        "post",
        "/assistants",
        {"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["vs_nope"]}}},
    ).json()["error"]
    assert store_refused["param"] == "tool_resources.file_search.vector_store_ids[0]"
