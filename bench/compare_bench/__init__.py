"""The pieces of bench/compare.py (run that script; see bench/README.md).

- common.py:    stdlib-only helpers shared with the mem0 side (the hash embedder, the network
                guard, latency summaries); bench/compare_mem0.py imports only this
- workload.py:  the synthetic workload (items, paraphrased queries), its files, exact truth
- engramia_side.py: Engramia in local mode (SDK) and through gunicorn over HTTP
- mem0_side.py: mem0's own virtualenv and the subprocess that runs bench/compare_mem0.py
- report.py:    conditions, the contract's JSON, ratios, targets and the table

No module imports Django or app code at import time: bench/compare.py configures Django first.
"""
