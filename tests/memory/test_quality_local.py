"""Recall quality with the real local model (all-MiniLM-L6-v2 on onnxruntime), offline."""

import pytest

from memory.services import learn_pattern, recall_patterns
from tenants.services import ensure_project

pytestmark = pytest.mark.model

CLUSTERS = {
    "csv": [
        "Parse a CSV file into a list of dictionaries",
        "Read comma-separated values from disk into records",
        "Load a .csv spreadsheet export and turn each row into a dict",
    ],
    "retry": [
        "Retry an HTTP request with exponential backoff",
        "Re-send a failed web call, waiting longer after each attempt",
        "Add backoff and retries to a flaky network request",
    ],
    "dates": [
        "Convert a UTC timestamp to the user's local time zone",
        "Show a UTC datetime in the viewer's own timezone",
        "Translate universal time into local time for display",
    ],
    "sql": [
        "Find duplicate emails in the users table with SQL",
        "Write a query that lists users sharing the same email address",
        "Detect repeated email values in a database table",
    ],
    "resize": [
        "Resize uploaded images to thumbnails",
        "Make small preview pictures from user uploads",
        "Scale down photos people upload into thumbnail size",
    ],
}
NOISE = [
    "Bake sourdough bread at home",
    "Best hiking trails in the Alps",
    "History of the Roman empire",
    "How to tune a guitar",
    "Knitting a wool scarf",
]


@pytest.fixture
def local_project(db):
    project = ensure_project("quality", "local", actor=None)
    project.embedding_model = "local:all-MiniLM-L6-v2"
    project.save()
    return project


def test_paraphrases_recall_their_cluster_and_noise_is_rejected(local_project):
    owners = {}
    for cluster, texts in CLUSTERS.items():
        result = learn_pattern(
            project=local_project, task=texts[0], code=f"solution for {cluster}", actor=None
        )
        owners[result.pattern_id] = cluster
    for text in NOISE:
        learn_pattern(project=local_project, task=text, code="noise", actor=None)
    hits = total = 0
    for cluster, texts in CLUSTERS.items():
        for paraphrase in texts[1:]:
            top = recall_patterns(project=local_project, task=paraphrase, limit=1).matches[0]
            hits += owners.get(top.pattern_id) == cluster
            total += 1
    assert hits / total >= 0.9, f"top-1 hit rate {hits}/{total}"
    unrelated = recall_patterns(
        project=local_project, task="Quantum chromodynamics lecture notes", min_similarity=0.5
    ).matches
    clustered = {text for texts in CLUSTERS.values() for text in texts}
    assert [m.task for m in unrelated if m.task in clustered] == []
