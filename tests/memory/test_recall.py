"""recall: eval-weighted ranking, explain, filters, read-only, and correctness under scoping."""

import random
import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from memory.models import Pattern
from memory.services import learn_pattern, recall_patterns
from memory.services import recall as recall_module
from retrieval import search as search_module
from retrieval.embeddings import get_embedder
from retrieval.pinned_model import embedder_for
from tenants.services import ensure_project
from tests.memory.patterns import fill


def recall(client, task, **fields):
    return client.post("/v1/recall", {"task": task, **fields}, format="json")


def test_recall_ranks_by_similarity_weighted_by_quality(editor, reader):
    client = editor.client()
    weak = client.post(
        "/v1/learn", {"task": "parse csv file rows", "code": "weak", "eval_score": 1}, format="json"
    ).json()
    strong = client.post(
        "/v1/learn",
        {"task": "parse csv file lines", "code": "strong", "eval_score": 10},
        format="json",
    ).json()
    client.post("/v1/learn", {"task": "bake sourdough bread", "code": "flour"}, format="json")
    matches = recall(reader.client(), "parse csv file", explain=True).json()["matches"]
    assert [m["pattern_id"] for m in matches[:2]] == [strong["pattern_id"], weak["pattern_id"]]
    top = matches[0]
    assert set(top) >= {
        "pattern_id",
        "task",
        "code",
        "output",
        "similarity",
        "eval_score",
        "score",
        "reuse_tier",
        "source",
        "run_id",
        "created_at",
        "explain",
    }
    explain = top["explain"]
    assert (
        abs(explain["similarity"] * explain["eval_multiplier"] * explain["recency"] - top["score"])
        < 1e-5
    )
    assert explain["eval_multiplier"] == 1.5
    unweighted = recall(reader.client(), "parse csv file", eval_weighted=False).json()["matches"]
    assert all(m["score"] == m["similarity"] for m in unweighted)
    assert "explain" not in unweighted[0]


def test_unrated_patterns_get_a_neutral_weight(project_a):
    result = learn_pattern(
        project=project_a, task="deploy with docker compose", code="c", actor=None
    )
    match = recall_patterns(
        project=project_a, task="deploy with docker compose", explain=True
    ).matches[0]
    assert match.pattern_id == result.pattern_id and match.explain["eval_multiplier"] == 1.0
    assert match.reuse_tier == "duplicate"


def test_recency_weight_prefers_newer_patterns(project_a):
    old = learn_pattern(
        project=project_a,
        task="rotate log files daily",
        code="old",
        created_at=timezone.now() - timedelta(days=720),
        on_duplicate="keep_both",
        actor=None,
    )
    new = learn_pattern(
        project=project_a,
        task="rotate log files daily",
        code="new",
        on_duplicate="keep_both",
        actor=None,
    )
    ranked = recall_patterns(
        project=project_a, task="rotate log files daily", recency_weight=1.0
    ).matches
    assert [m.pattern_id for m in ranked[:2]] == [new.pattern_id, old.pattern_id]
    assert ranked[1].score < ranked[0].score * 0.1


def test_filters_limit_and_min_similarity(editor):
    client = editor.client()
    for index in range(8):
        client.post(
            "/v1/learn",
            {
                "task": f"sort list variant {index}",
                "code": str(index),
                "source": "import" if index % 2 else "api",
            },
            format="json",
        )
    assert len(recall(client, "sort list variant", limit=3).json()["matches"]) == 3
    sources = {
        m["source"]
        for m in recall(client, "sort list variant", source="import", limit=50).json()["matches"]
    }
    assert sources == {"import"}
    assert (
        recall(client, "completely unrelated words here", min_similarity=0.99).json()["matches"]
        == []
    )


def test_recall_never_writes(editor, django_assert_max_num_queries):
    client = editor.client()
    client.post(
        "/v1/learn", {"task": "merge two dicts", "code": "a | b", "eval_score": 7}, format="json"
    )
    before = list(Pattern.objects.values())
    with connection.execute_wrapper(_refuse_writes):
        response = recall(client, "merge dictionaries", explain=True, include_documents=True)
    assert response.status_code == 200
    assert list(Pattern.objects.values()) == before


def _refuse_writes(execute, sql, params, many, context):
    verb = sql.lstrip("( \n").split()[0].upper()
    allowed = ("SELECT", "WITH", "SET", "SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK")
    assert verb in allowed, sql
    return execute(sql, params, many, context)


def test_recall_costs_a_fixed_number_of_queries(editor, django_assert_num_queries):
    client = editor.client()
    for index in range(30):
        client.post("/v1/learn", {"task": f"task number {index}", "code": "c"}, format="json")
    recall(client, "task number 3")  # warm the key's last_used_at and keep its row
    # the candidates (the size probe is inside that query); the key with its project and roles
    # is kept by the process (tenants.keyscope)
    with django_assert_num_queries(1):
        assert recall(client, "task number 3").status_code == 200


def test_recall_is_scoped_to_the_project(editor, outsider):
    editor.client().post("/v1/learn", {"task": "secret acme recipe", "code": "acme"}, format="json")
    assert recall(outsider.client(), "secret acme recipe").json()["matches"] == []


def test_bad_recall_input(reader):
    for payload, attr in [
        ({}, "task"),
        ({"task": "x", "limit": 0}, "limit"),
        ({"task": "x", "limit": 51}, "limit"),
        ({"task": "x", "recency_weight": 2}, "recency_weight"),
        ({"task": "x", "explain": "maybe"}, "explain"),
        ({"task": "x", "unknown": 1}, "unknown"),
    ]:
        response = reader.client().post("/v1/recall", payload, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["attr"] == attr


def test_small_project_in_a_large_table_gets_its_true_nearest_neighbours(db, monkeypatch):
    """A tiny project next to a big one: the HNSW path and the exact path agree on the top 10."""
    embedder = get_embedder("hash")
    big = ensure_project("bigco", "main", actor=None)
    small = ensure_project("tinyco", "main", actor=None)
    rng = random.Random(7)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "sigma",
        "omega",
        "kappa",
        "lambda",
        "theta",
        "zeta",
        "csv",
        "json",
        "parse",
        "render",
        "deploy",
        "queue",
        "cache",
        "index",
        "vector",
        "graph",
    ]

    def task() -> str:
        return " ".join(rng.choice(words) for _ in range(6))

    rows = []
    for project, count in ((big, 3000), (small, 60)):
        tasks = [task() for _ in range(count)]
        for text, vector in zip(tasks, embedder.embed_documents(tasks), strict=True):
            rows.append(
                Pattern(
                    project=project,
                    task=text,
                    code="c",
                    task_hash=text,
                    embedding=vector,
                    embedding_model=embedder.name,
                )
            )
    Pattern.objects.bulk_create(rows, batch_size=1000)
    query = "parse csv vector index deploy cache"
    exact = [m.pattern_id for m in recall_patterns(project=small, task=query, limit=10).matches]
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 10)
    result = recall_patterns(project=small, task=query, limit=10)
    assert result.strategy == "hnsw"
    assert [m.pattern_id for m in result.matches] == exact
    assert len(exact) == 10


def test_a_recall_through_hnsw_searches_with_the_ef_search_of_its_window(project_a, monkeypatch):
    """limit 10 needs 40 candidates (the floor covers them), limit 50 needs 200: the statement
    sets that much in its own round trip, and the connection's own setting is back after it."""
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 30)
    fill(project_a, 300)
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 123")
    for limit, ef_search in ((10, search_module.MIN_EF_SEARCH), (50, 200)):
        with CaptureQueriesContext(connection) as calls:
            result = recall_patterns(project=project_a, task="parse csv deploy queue", limit=limit)
        assert result.strategy == "hnsw" and len(result.matches) == limit
        (statement,) = [query["sql"] for query in calls.captured_queries]
        assert re.findall(r"set_config\('hnsw\.ef_search', '(\d+)'", statement) == [str(ef_search)]
        with connection.cursor() as cursor:
            cursor.execute("SHOW hnsw.ef_search")
            assert cursor.fetchone()[0] == "123"


def test_a_small_project_inside_a_large_shared_index_still_gets_full_pages(db, monkeypatch):
    """40 candidates of a 3,000-row graph hold few of a 60-row project's rows: the iterative scan
    goes on until the page is full."""
    big = ensure_project("bigco", "main", actor=None)
    small = ensure_project("tinyco", "main", actor=None)
    fill(big, 3000, seed=1)
    fill(small, 60, seed=2)
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 10)
    for limit in (1, 10, 25):
        result = recall_patterns(project=small, task="parse csv deploy queue cache", limit=limit)
        assert result.strategy == "hnsw" and len(result.matches) == limit
        ids = {match.pattern_id for match in result.matches}
        assert Pattern.objects.filter(pk__in=ids, project=small).count() == limit


def test_the_exact_branch_starts_no_parallel_workers_when_the_scope_goes_through_hnsw(
    project_a, monkeypatch
):
    """PostgreSQL may plan the exact branch in parallel (it cannot know the scope's size when
    planning); the branch that does not run must not launch its workers."""
    monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 30)
    fill(project_a, 300)
    embedder = embedder_for(project_a)
    vector = embedder.embed_query("parse csv deploy queue")
    statement = recall_module.search_statement(384, False)
    params = recall_module.search_params(project_a.pk, embedder.name, vector, 40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE memory_pattern")  # the project is the whole table: a seq scan
        # Parallel plans at any size, by a seq scan or an index scan (rows of earlier tests,
        # rolled back but not yet vacuumed, can make the index the cheaper way to the scope).
        for setting in (
            "parallel_setup_cost",
            "parallel_tuple_cost",
            "min_parallel_table_scan_size",
            "min_parallel_index_scan_size",
        ):
            cursor.execute(f"SET LOCAL {setting} = 0")  # the test's transaction ends them
        cursor.execute("SET LOCAL enable_sort = off")  # the HNSW branch takes its index
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    branches = _without_subtree(plan, "CTE scope_size")  # the size lookup runs, maybe in parallel
    assert "Workers Planned" in branches and "pattern_hnsw_hash_384" in branches, plan
    assert re.findall(r"Workers Launched: (\d+)", branches) == ["0"], plan


def _without_subtree(plan: str, label: str) -> str:
    """The plan without the node labelled label and the lines indented below it."""
    kept, depth = [], None
    for line in plan.splitlines():
        indent = len(line) - len(line.lstrip())
        if depth is not None and indent > depth:
            continue
        depth = indent if line.strip() == label else None
        if depth is None:
            kept.append(line)
    return "\n".join(kept)
