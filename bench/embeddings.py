"""Benchmark the local embedder: cold start, per-query latency, batched throughput.

Run: .venv/bin/python bench/embeddings.py [--queries 300] [--documents 1024]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHORT_QUERIES = [
    "How do I parse a CSV file in Python?",
    "retry the API call after a rate limit",
    "summarise the quarterly revenue report",
    "which agent handled the refund request",
    "deploy the service to staging",
]
DOCUMENT = (
    "When the payment provider returns HTTP 429 the agent waits for the Retry-After header, "
    "then retries the charge with the same idempotency key so the customer is never billed "
    "twice; after three failures it escalates to a human operator with the full trace."
)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    """Print conditions, then cold start, query latency and batch throughput."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--documents", type=int, default=1024)
    args = parser.parse_args()

    started = time.perf_counter()
    from retrieval.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    loaded = time.perf_counter()
    embedder.embed_query("cold start")
    first = time.perf_counter()

    import onnxruntime

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    short_tokens = embedder.token_counts(SHORT_QUERIES)
    document_tokens = embedder.token_counts([DOCUMENT])[0]
    print("conditions")
    print(f"  machine      {cpu_model()}, os.cpu_count={os.cpu_count()}, usable={affinity}")
    print(f"  python       {platform.python_version()}, onnxruntime {onnxruntime.__version__}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load avg     {load} (other processes share these cores)")
    print(f"  model        {embedder.name} ({embedder.dimensions}-d), {embedder.model_path.name}")
    print(f"  threads      intra_op={embedder.threads}, inter_op=1, spinning off")
    print(
        f"  short query  {min(short_tokens)}-{max(short_tokens)} tokens, "
        f"{min(map(len, SHORT_QUERIES))}-{max(map(len, SHORT_QUERIES))} chars"
    )
    print(f"  document     {document_tokens} tokens, {len(DOCUMENT)} chars")
    print(f"  batch size   {embedder.batch_size}")

    print("cold start")
    print(f"  import + load  {(loaded - started) * 1000:7.1f} ms")
    print(f"  first query    {(first - loaded) * 1000:7.1f} ms")

    # Uncached path: distinct texts, so the LRU never answers.
    for text in SHORT_QUERIES:
        embedder._embed_one(text)  # warm-up
    latencies = []
    for index in range(args.queries):
        text = f"{SHORT_QUERIES[index % len(SHORT_QUERIES)]} #{index}"
        begin = time.perf_counter()
        embedder._embed_one(text)
        latencies.append((time.perf_counter() - begin) * 1000)
    print(f"query latency, uncached, n={args.queries}")
    print(
        f"  p50 {percentile(latencies, 0.5):6.2f} ms   p95 {percentile(latencies, 0.95):6.2f} ms"
        f"   mean {statistics.fmean(latencies):6.2f} ms"
    )

    cached = []
    for _ in range(args.queries):
        begin = time.perf_counter()
        embedder.embed_query(SHORT_QUERIES[0])
        cached.append((time.perf_counter() - begin) * 1000)
    print(f"query latency, cached: p50 {percentile(cached, 0.5) * 1000:6.1f} us")

    for label, texts in (
        ("short queries", [f"{SHORT_QUERIES[i % 5]} #{i}" for i in range(args.documents)]),
        ("documents", [f"{DOCUMENT} ({i})" for i in range(args.documents)]),
    ):
        begin = time.perf_counter()
        embedder.embed_documents(texts)
        elapsed = time.perf_counter() - begin
        print(f"batched {label:13s} n={len(texts)}: {len(texts) / elapsed:8.1f} texts/s")


if __name__ == "__main__":
    main()
