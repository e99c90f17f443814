"""Curation API: list and filter, patch, archive, delete, evaluations, metrics, feedback."""

from memory.models import Evaluation, Pattern
from tenants.models import AuditEntry


def _learn(client, task, **fields):
    return client.post("/v1/learn", {"task": task, "code": "c", **fields}, format="json").json()


def test_list_filters_and_paginates(owner, django_assert_num_queries):
    client = owner.client()
    for index in range(12):
        _learn(
            client,
            f"job {index} of the batch",
            source="import" if index < 4 else "api",
            run_id="run-a" if index % 2 else "run-b",
            eval_score=index % 10,
        )
    client.get("/v1/patterns")
    client.get("/v1/patterns")  # the key's row is kept from here on (tenants.keyscope)
    with django_assert_num_queries(2):  # count, page: no per-row
        page = client.get("/v1/patterns", {"page_size": 5}).json()
    assert page["count"] == 12 and len(page["results"]) == 5 and page["next"]
    assert all(
        r["source"] == "import"
        for r in client.get("/v1/patterns", {"source": "import"}).json()["results"]
    )
    assert client.get("/v1/patterns", {"run_id": "run-a"}).json()["count"] == 6
    assert all(
        r["eval_score"] >= 7 for r in client.get("/v1/patterns", {"min_eval": 7}).json()["results"]
    )
    assert client.get("/v1/patterns", {"q": "job 11"}).json()["count"] == 1
    assert client.get("/v1/patterns", {"min_eval": "lots"}).status_code == 400
    assert "embedding" not in page["results"][0]


def test_patch_archive_and_delete_need_admin(owner, editor):
    pattern_id = _learn(owner.client(), "configure nginx reverse proxy")["pattern_id"]
    url = f"/v1/patterns/{pattern_id}"
    assert editor.client().patch(url, {"archived": True}, format="json").status_code == 403
    response = owner.client().patch(url, {"archived": True, "code": "better"}, format="json")
    assert response.status_code == 200 and response.json()["archived"] is True
    assert owner.client().get("/v1/patterns").json()["count"] == 0
    assert owner.client().get("/v1/patterns", {"archived": "true"}).json()["count"] == 1
    recalled = owner.client().post(
        "/v1/recall", {"task": "configure nginx reverse proxy"}, format="json"
    )
    assert recalled.json()["matches"] == []
    assert owner.client().patch(url, {"archived": "sometimes"}, format="json").status_code == 400
    assert editor.client().delete(url).status_code == 403
    assert owner.client().delete(url).status_code == 204
    assert not Pattern.objects.filter(pk=pattern_id).exists()
    assert AuditEntry.objects.filter(
        content_type__model="pattern",
        object_pk=str(pattern_id),
        action=AuditEntry.Action.DELETE,
        actor=owner.user,
    ).exists()


def test_patching_the_task_re_embeds_it(owner):
    pattern_id = _learn(owner.client(), "alpha beta gamma")["pattern_id"]
    owner.client().patch(
        f"/v1/patterns/{pattern_id}", {"task": "render a pie chart"}, format="json"
    )
    match = (
        owner.client()
        .post("/v1/recall", {"task": "render a pie chart"}, format="json")
        .json()["matches"][0]
    )
    assert match["pattern_id"] == pattern_id and match["reuse_tier"] == "duplicate"


def test_evaluations_update_the_robust_score(editor):
    pattern_id = _learn(editor.client(), "write a retry decorator")["pattern_id"]
    url = f"/v1/patterns/{pattern_id}/evaluations"
    for score in (2, 9, 8, 10, 9):
        response = editor.client().post(
            url, {"score": score, "feedback": "Add jitter to the backoff."}, format="json"
        )
        assert response.status_code == 201
    assert response.json()["pattern_eval_score"] == 9  # the median, not the mean or the last
    assert Evaluation.objects.filter(pattern_id=pattern_id).count() == 5
    bad = editor.client().post(url, {"score": -1, "evaluator": "robot"}, format="json")
    assert {e["attr"] for e in bad.json()["errors"]} == {"score", "evaluator"}


def test_feedback_aggregates_recurring_feedback(editor):
    first = _learn(editor.client(), "task one")["pattern_id"]
    second = _learn(editor.client(), "task two")["pattern_id"]
    for pattern_id, text in (
        (first, "Add tests."),
        (second, "add tests"),
        (second, "Handle empty input"),
    ):
        editor.client().post(
            f"/v1/patterns/{pattern_id}/evaluations", {"score": 5, "feedback": text}, format="json"
        )
    feedback = editor.client().get("/v1/feedback").json()["feedback"]
    assert feedback[0]["count"] == 2 and feedback[0]["feedback"].lower().startswith("add tests")
    assert feedback[1]["count"] == 1


def test_metrics(editor):
    _learn(editor.client(), "one", eval_score=4)
    _learn(editor.client(), "two", eval_score=8)
    _learn(editor.client(), "three")
    metrics = editor.client().get("/v1/metrics").json()
    assert metrics["pattern_count"] == 3 and metrics["evaluated_count"] == 2
    assert metrics["avg_eval_score"] == 6.0 and metrics["by_source"] == {"api": 3}


def test_outcomes_credit_recalled_patterns(editor, outsider):
    pattern_id = _learn(editor.client(), "summarize a support ticket")["pattern_id"]
    response = editor.client().post(
        "/v1/outcomes", {"pattern_ids": [pattern_id], "score": 9}, format="json"
    )
    assert response.json() == {"credited": 1}
    assert Evaluation.objects.get(pattern_id=pattern_id).evaluator == "agent_outcome"
    foreign = outsider.client().post(
        "/v1/outcomes", {"pattern_ids": [pattern_id], "score": 0}, format="json"
    )
    assert foreign.json() == {"credited": 0}
