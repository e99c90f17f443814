"""Settings for the test suite: the real settings with offline, deterministic providers.

Set before the real settings are read, so worker subprocesses started by tests inherit them.
"""

import os

os.environ.setdefault("ENGRAMIA_EMBEDDINGS", "hash")
os.environ.setdefault("ENGRAMIA_LLM", "none")
os.environ.setdefault("ENGRAMIA_API_THROTTLE", "100000/min")
os.environ.setdefault("ENGRAMIA_AUTH_FAILURE_THROTTLE", "100000/min")
# Tests write recall counts themselves (memory.recall_stats.flush_recall_counts), no thread.
os.environ.setdefault("ENGRAMIA_RECALL_STATS_FLUSH_SECONDS", "0")

from engramia_site.settings import *  # noqa: F403

# Close connections after each request so live-server threads never hold the test database open.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
