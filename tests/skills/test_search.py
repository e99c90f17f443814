"""Semantic skill search: relevance, eval weighting, explanations, one embedding model only."""

from __future__ import annotations

import pytest

from retrieval.embeddings import get_embedder
from skills.models import Skill
from skills.services import evaluate_skill, search_skills
from tenants.choices import Role


def _same_vector(*skills: Skill) -> None:
    """Give skills one identical vector so only their evaluations can tell them apart."""
    vector = get_embedder("hash:384").embed_documents(["look up the weather forecast"])[0]
    Skill.objects.filter(pk__in=[s.pk for s in skills]).update(embedding=vector)


def test_the_most_relevant_skill_ranks_first(reader, make_skill, project_a):
    make_skill(project_a, "weather_forecast", description="Get tomorrow's weather for a city.")
    make_skill(project_a, "refund_order", description="Refund a customer's order payment.")
    make_skill(project_a, "translate_text", description="Translate text between languages.")
    response = reader.client().get("/v1/skills", {"q": "refund the order payment"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["name"] == "refund_order"
    assert results[0]["similarity"] > results[1]["similarity"]
    assert all(item["score"] is not None for item in results)


def test_of_two_equally_similar_skills_the_better_evaluated_ranks_first(
    reader, editor, make_skill, project_a
):
    # Created first, so an id tie-break alone would put the weaker one on top.
    weak = make_skill(project_a, "weather_weak", description="Weather forecast.")
    strong = make_skill(project_a, "weather_strong", description="Weather forecast.")
    _same_vector(weak, strong)
    for score in (2, 3):
        evaluate_skill(actor=editor.user, skill=weak, project=project_a, score=score)
    for score in (9, 9):
        evaluate_skill(actor=editor.user, skill=strong, project=project_a, score=score)

    response = reader.client().get(
        "/v1/skills", {"q": "look up the weather forecast", "explain": "true"}
    )
    results = response.json()["results"]
    assert [item["name"] for item in results] == ["weather_strong", "weather_weak"]
    assert results[0]["similarity"] == pytest.approx(results[1]["similarity"])
    assert results[0]["score"] > results[1]["score"]
    strong_explain, weak_explain = results[0]["explain"], results[1]["explain"]
    assert strong_explain["eval_score"] == 9.0 and strong_explain["eval_multiplier"] == 1.4
    assert weak_explain["eval_score"] == 2.5 and weak_explain["eval_multiplier"] == 0.75
    assert strong_explain["score"] == pytest.approx(
        strong_explain["similarity"] * strong_explain["eval_multiplier"], abs=1e-5
    )

    unweighted = reader.client().get(
        "/v1/skills", {"q": "look up the weather forecast", "eval_weighted": "false"}
    )
    assert [item["name"] for item in unweighted.json()["results"]] == [
        "weather_weak",
        "weather_strong",
    ]


def test_an_unrated_skill_sits_between_good_and_bad_ones(editor, make_skill, project_a):
    bad = make_skill(project_a, "bad")
    unrated = make_skill(project_a, "unrated")
    good = make_skill(project_a, "good")
    _same_vector(bad, unrated, good)
    evaluate_skill(actor=editor.user, skill=bad, project=project_a, score=1)
    evaluate_skill(actor=editor.user, skill=good, project=project_a, score=8)
    matches = search_skills(
        project=project_a, user_role=Role.READER, q="look up the weather forecast"
    )
    assert [m.skill.name for m in matches] == ["good", "unrated", "bad"]
    assert matches[1].explain()["eval_multiplier"] == 1.0


def test_explain_is_left_out_unless_asked(reader, make_skill, project_a):
    make_skill(project_a, "weather_forecast")
    item = reader.client().get("/v1/skills", {"q": "weather"}).json()["results"][0]
    assert "explain" not in item


def test_skills_embedded_by_another_model_are_not_compared(reader, make_skill, project_a):
    make_skill(project_a, "weather_forecast", description="Weather forecast.")
    foreign = make_skill(project_a, "weather_report", description="Weather forecast.")
    # A 512-d vector from another model must neither be ranked nor break the 384-d query.
    Skill.objects.filter(pk=foreign.pk).update(
        embedding=get_embedder("hash:512").embed_documents(["Weather forecast."])[0],
        embedding_model="hash:512",
    )
    results = reader.client().get("/v1/skills", {"q": "weather forecast"}).json()["results"]
    assert [item["name"] for item in results] == ["weather_forecast"]
    listed = reader.client().get("/v1/skills").json()["results"]
    assert {item["name"] for item in listed} == {"weather_forecast", "weather_report"}


def test_limit_caps_the_results_and_is_validated(reader, make_skill, project_a):
    for index in range(5):
        make_skill(project_a, f"weather_{index}", description="Weather forecast.")
    client = reader.client()
    assert len(client.get("/v1/skills", {"q": "weather", "limit": 2}).json()["results"]) == 2
    response = client.get("/v1/skills", {"q": "weather", "limit": 51})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "limit"


def test_search_combines_q_with_tags_and_scope(reader, make_skill, project_a, project_b):
    make_skill(project_a, "weather_here", tags=["weather"])
    make_skill(project_b, "weather_public", tags=["weather"], visibility="public")
    make_skill(project_a, "weather_untagged")
    client = reader.client()
    tagged = client.get("/v1/skills", {"q": "weather", "tags": "weather"}).json()["results"]
    assert {item["name"] for item in tagged} == {"weather_here", "weather_public"}
    public = client.get("/v1/skills", {"q": "weather", "scope": "public"}).json()["results"]
    assert [item["name"] for item in public] == ["weather_public"]


def test_search_without_a_role_finds_nothing(make_skill, project_a):
    make_skill(project_a, "weather_forecast")
    assert search_skills(project=project_a, user_role=None, q="weather") == []
    assert len(search_skills(project=project_a, user_role=Role.READER, q="weather")) == 1


def test_search_uses_the_models_hnsw_index(make_skill, project_a):
    from django.db import connection
    from django.db.models.functions import Cast
    from pgvector.django import CosineDistance, VectorField

    make_skill(project_a, "weather_forecast")
    vector = get_embedder("hash:384").embed_query("weather")
    queryset = (
        Skill.objects.filter(embedding_model="hash:384")
        .annotate(distance=CosineDistance(Cast("embedding", VectorField(dimensions=384)), vector))
        .order_by("distance")[:5]
    )
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            plan = queryset.explain()
        finally:
            cursor.execute("RESET enable_seqscan")
    assert "skill_emb_hash384_hnsw" in plan
