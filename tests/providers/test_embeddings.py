"""Embedding providers: local ONNX model, hash embedder, OpenAI against a loopback fake."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from retrieval import embeddings
from retrieval.embeddings import (
    EmbeddingError,
    HashEmbedder,
    LocalEmbedder,
    OpenAIEmbedder,
    QueryCache,
    get_embedder,
    query_cache,
    reset_embedders,
)
from tests.fakes.openai_embeddings import FakeOpenAIEmbeddings, fake_vector

REPO = Path(__file__).resolve().parents[2]
ENV_VARS = [
    "ENGRAMIA_EMBEDDINGS",
    "ENGRAMIA_EMBED_THREADS",
    "ENGRAMIA_OPENAI_EMBEDDING_MODEL",
    "ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
]
CSV_QUESTION = "How do I parse a CSV file in Python?"
CSV_PARAPHRASE = "Read comma separated values with python"
PASTA = "Best pasta recipe"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    reset_embedders()
    yield
    reset_embedders()


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture
def fake() -> Iterator[FakeOpenAIEmbeddings]:
    with FakeOpenAIEmbeddings() as server:
        yield server


def openai_embedder(fake: FakeOpenAIEmbeddings, **kwargs: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(api_key="sk-test", base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


# --- module --------------------------------------------------------------------------------


def test_module_imports_without_django_or_heavy_dependencies() -> None:
    code = (
        "import sys, retrieval.embeddings as e; "
        "heavy = {'django', 'onnxruntime', 'tokenizers', 'openai', 'numpy'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- registry ------------------------------------------------------------------------------


def test_get_embedder_returns_one_instance_per_name() -> None:
    assert get_embedder("hash") is get_embedder("hash:384")
    assert get_embedder("hash:64") is not get_embedder("hash")
    assert get_embedder("hash:64").dimensions == 64


def test_get_embedder_defaults_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAMIA_EMBEDDINGS", "hash")
    assert get_embedder().name == "hash:384"


@pytest.mark.parametrize("name", ["bert", "local:other-model", "hash:wide"])
def test_get_embedder_rejects_unknown_names(name: str) -> None:
    with pytest.raises(EmbeddingError, match=r"unknown|bad"):
        get_embedder(name)


@pytest.mark.model
def test_get_embedder_loads_local_model_once_for_short_and_stored_name() -> None:
    first = get_embedder("local")
    assert first.name == "local:all-MiniLM-L6-v2"
    assert get_embedder("local:all-MiniLM-L6-v2") is first
    assert get_embedder() is first  # default is local


def test_concurrent_first_calls_build_a_single_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    class SlowHash(HashEmbedder):
        def __init__(self, dimensions: int = 384) -> None:
            built.append(dimensions)
            threading.Event().wait(0.05)
            super().__init__(dimensions)

    monkeypatch.setattr(embeddings, "HashEmbedder", SlowHash)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(get_embedder("hash"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == [384]
    assert all(result is results[0] for result in results)


def test_warm_up_loads_the_default_embedder_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGRAMIA_EMBEDDINGS", "hash:48")
    embeddings.reset_embedders()
    embeddings.warm_up_embedder().join(timeout=30)
    assert "hash:48" in embeddings._embedders
    assert embeddings.query_cache.get("hash:48", "warm-up") is not None  # inference ran once


def test_a_failing_warm_up_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ENGRAMIA_EMBEDDINGS", "bert")
    embeddings.warm_up_embedder().join(timeout=30)
    assert "could not warm up the embedder" in caplog.text


# --- query cache ---------------------------------------------------------------------------


def test_query_cache_hits_and_returns_equal_but_independent_vectors() -> None:
    embedder = get_embedder("hash")
    first = embedder.embed_query("retry on rate limit")
    first[0] = 42.0  # callers mutating their copy must not poison the cache
    second = embedder.embed_query("retry on rate limit")
    third = embedder.embed_query("retry on rate limit")
    assert second == third
    assert second[0] != 42.0
    assert second == HashEmbedder().embed_documents(["retry on rate limit"])[0]
    assert (query_cache.misses, query_cache.hits) == (1, 2)


def test_query_cache_is_keyed_by_embedder_name() -> None:
    get_embedder("hash").embed_query("same text")
    vector = get_embedder("hash:64").embed_query("same text")
    assert len(vector) == 64
    assert query_cache.misses == 2


def test_query_cache_evicts_least_recently_used() -> None:
    cache = QueryCache(maxsize=2)
    cache.put("m", "a", [1.0])
    cache.put("m", "b", [2.0])
    assert cache.get("m", "a") == [1.0]  # a is now most recent
    cache.put("m", "c", [3.0])
    assert cache.get("m", "b") is None
    assert cache.get("m", "a") == [1.0]
    assert len(cache) == 2


def test_query_cache_is_consistent_under_threads() -> None:
    embedder = get_embedder("hash")
    texts = [f"query {i % 20}" for i in range(400)]
    results: dict[int, list[float]] = {}

    def work(offset: int) -> None:
        for index in range(offset, len(texts), 4):
            results[index] = embedder.embed_query(texts[index])

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = HashEmbedder().embed_documents(texts)
    assert [results[i] for i in range(len(texts))] == expected
    assert query_cache.hits + query_cache.misses == 400
    assert len(query_cache) == 20


# --- hash ----------------------------------------------------------------------------------


def test_hash_vectors_are_unit_length_and_deterministic() -> None:
    embedder = HashEmbedder()
    texts = ["Deploy the service to staging", "", "!!!", "a"]
    vectors = embedder.embed_documents(texts)
    assert embedder.name == "hash:384"
    assert all(len(v) == 384 for v in vectors)
    assert all(norm(v) == pytest.approx(1.0) for v in vectors)
    assert vectors == HashEmbedder().embed_documents(texts)
    assert [embedder.embed_query(t) for t in texts] == vectors


def test_hash_similarity_follows_shared_words() -> None:
    embedder = HashEmbedder()
    base, near, far = embedder.embed_documents(
        [
            "retry the payment API call after a timeout",
            "retry payment API calls after timeouts",
            "bake sourdough bread overnight",
        ]
    )
    assert cosine(base, near) > 0.5
    assert abs(cosine(base, far)) < 0.2
    assert cosine(base, near) > cosine(base, far) + 0.4


def test_hash_is_case_insensitive() -> None:
    embedder = HashEmbedder()
    upper, lower = embedder.embed_documents(["Parse CSV Files", "parse csv files"])
    assert cosine(upper, lower) == pytest.approx(1.0)


# --- local ---------------------------------------------------------------------------------


@pytest.mark.model
def test_local_vectors_are_384_d_unit_length(local: LocalEmbedder) -> None:
    vectors = local.embed_documents([CSV_QUESTION, ""])
    assert local.dimensions == 384
    assert local.name == "local:all-MiniLM-L6-v2"
    assert all(len(v) == 384 for v in vectors)
    assert all(norm(v) == pytest.approx(1.0, abs=1e-5) for v in vectors)


@pytest.mark.model
def test_local_paraphrase_is_closer_than_unrelated(local: LocalEmbedder) -> None:
    question, paraphrase, pasta = local.embed_documents([CSV_QUESTION, CSV_PARAPHRASE, PASTA])
    assert cosine(question, paraphrase) > 0.45
    assert cosine(question, pasta) < 0.15
    assert cosine(paraphrase, pasta) < 0.15


@pytest.mark.model
def test_local_tokenizer_does_not_pad_to_fixed_length(local: LocalEmbedder) -> None:
    assert local.tokenizer.padding is None
    assert local.token_counts(["hello world"]) == [4]  # [CLS] hello world [SEP]
    assert local.token_counts(["word " * 1000]) == [256]


@pytest.mark.model
def test_local_batch_matches_one_by_one(
    local: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mixed lengths and a tiny batch size exercise sorting, padding and order restoration.
    monkeypatch.setattr(local, "batch_size", 3)
    texts = [PASTA, "short", CSV_QUESTION * 5, "", CSV_PARAPHRASE, "a b c d e f g", "x " * 300]
    batched = local.embed_documents(texts)
    for text, vector in zip(texts, batched, strict=True):
        single = local.embed_query(text)
        assert max(abs(a - b) for a, b in zip(vector, single, strict=True)) < 1e-5


@pytest.mark.model
def test_local_is_deterministic(local: LocalEmbedder) -> None:
    assert local.embed_documents([CSV_QUESTION]) == local.embed_documents([CSV_QUESTION])


@pytest.mark.model
def test_local_caps_onnx_threads(local: LocalEmbedder) -> None:
    options = local.session.get_session_options()
    assert 1 <= options.intra_op_num_threads <= 2
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_thread_count_honours_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAMIA_EMBED_THREADS", "1")
    assert embeddings._default_threads() == 1
    monkeypatch.setenv("ENGRAMIA_EMBED_THREADS", "many")
    with pytest.raises(EmbeddingError, match="ENGRAMIA_EMBED_THREADS"):
        embeddings._default_threads()


def test_local_embedder_reports_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="cannot load ONNX model"):
        LocalEmbedder(model_path=tmp_path / "missing.onnx")


# --- OpenAI --------------------------------------------------------------------------------


def test_openai_without_key_is_a_clear_error() -> None:
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        get_embedder("openai")


def test_openai_batches_600_texts_into_3_requests(fake: FakeOpenAIEmbeddings) -> None:
    embedder = openai_embedder(fake)
    texts = [f"text number {i}" for i in range(600)]
    vectors = embedder.embed_documents(texts)
    assert [len(r.body["input"]) for r in fake.embedding_requests] == [256, 256, 88]
    assert fake.embedding_requests[0].body["model"] == "text-embedding-3-small"
    assert fake.embedding_requests[0].headers["authorization"] == "Bearer sk-test"
    assert len(vectors) == 600
    assert all(len(v) == 1536 for v in vectors)
    assert all(norm(v) == pytest.approx(1.0, abs=1e-6) for v in vectors)
    expected = fake_vector("text number 599", 1536)
    assert cosine(vectors[599], expected) / norm(expected) == pytest.approx(1.0, abs=1e-6)


def test_openai_retries_after_429(fake: FakeOpenAIEmbeddings) -> None:
    fake.fail_first = 1
    vector = openai_embedder(fake).embed_query("hello")
    assert len(fake.embedding_requests) == 2
    assert len(vector) == 1536


def test_openai_gives_up_with_embedding_error(fake: FakeOpenAIEmbeddings) -> None:
    fake.fail_first = 10
    fake.fail_status = 503
    with pytest.raises(EmbeddingError, match="HTTP 503"):
        openai_embedder(fake, max_retries=1).embed_documents(["hello"])
    assert len(fake.embedding_requests) == 2


def test_openai_unreachable_is_an_embedding_error() -> None:
    with FakeOpenAIEmbeddings() as closed:
        base_url = closed.base_url
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=base_url, max_retries=0, timeout=2)
    with pytest.raises(EmbeddingError, match="cannot reach"):
        embedder.embed_documents(["hello"])


def test_openai_honours_env_base_url_model_and_caches_queries(
    fake: FakeOpenAIEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("ENGRAMIA_OPENAI_EMBEDDING_MODEL", "text-embedding-3-large")
    embedder = get_embedder("openai")
    assert embedder.name == "openai:text-embedding-3-large"
    assert embedder.dimensions == 3072
    fake.dimensions = 3072
    first = embedder.embed_query("cached question")
    second = embedder.embed_query("cached question")
    assert first == second
    assert len(fake.embedding_requests) == 1
    assert fake.embedding_requests[0].body["model"] == "text-embedding-3-large"
    assert get_embedder("openai:text-embedding-3-large") is embedder


def test_openai_rejects_vectors_of_the_wrong_size(fake: FakeOpenAIEmbeddings) -> None:
    fake.dimensions = 768
    with pytest.raises(EmbeddingError, match="768-d"):
        openai_embedder(fake).embed_documents(["hello"])


def test_openai_unknown_model_needs_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbeddingError, match="ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS"):
        OpenAIEmbedder(model="nomic-embed-text", api_key="sk-test")
    monkeypatch.setenv("ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS", "768")
    assert OpenAIEmbedder(model="nomic-embed-text", api_key="sk-test").dimensions == 768
