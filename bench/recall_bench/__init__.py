"""The pieces of bench/recall.py (run that script; see bench/README.md).

- dataset.py: word lists, task texts, the Zipf project layout, seeding the table (COPY, vectors)
- sql.py:     statements against the bench database, replay/EXPLAIN, exact truth, recall@k
- measure.py: the Bench run per size: service vs SQL, threshold study, index variants, learn
- api.py:     gunicorn on 127.0.0.1 and POST /v1/recall timed through it
- report.py:  percentiles, timing, conditions, PASS/MISS against the targets, summary, --json

No module imports Django or app code at import time: bench/recall.py configures Django first.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
