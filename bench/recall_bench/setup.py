"""Django for a bench script: its own data dir and database, never a dev or production one."""

from __future__ import annotations

import os
from pathlib import Path


def configure(home: str, embedder: str, database_url: str | None) -> None:
    """Point Django at the bench's own data dir and database, then set it up."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "engramia_site.settings"
    os.environ["ENGRAMIA_HOME"] = str(Path(home).resolve())
    os.environ["ENGRAMIA_EMBEDDINGS"] = embedder
    os.environ.setdefault("ENGRAMIA_LOG_LEVEL", "WARNING")
    # Never inherit a dev or production database: only an explicit --database-url is used.
    os.environ.pop("ENGRAMIA_DATABASE_URL", None)
    if database_url:
        os.environ["ENGRAMIA_DATABASE_URL"] = database_url
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import django

    django.setup()
