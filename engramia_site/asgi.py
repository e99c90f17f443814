"""ASGI entry point, what `engramia serve` runs on uvicorn workers.

The site runs as Django's WSGI application on a fixed pool of threads, each keeping its
database connection (engramia_site.wsgi_bridge): Django's own ASGI handler would start a thread,
and so take a connection, for every request (it cost 3.7 ms more than the bridge per
`GET /openai/v1/assistants`). A streamed run's response, an async iterator, is sent from the
event loop once its view has returned, so open streams hold no thread. MCP sessions are an ASGI
app of their own, mounted in `settings.ASGI_MOUNTS`.

A worker loads the embedding model before it takes requests, then freezes what it has loaded
(engramia_site.gc_freeze) so that no full garbage collection walks it again.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engramia_site.settings")

from django.core.wsgi import get_wsgi_application

wsgi_application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (configured by get_wsgi_application)

from engramia_site.asgi_mounts import build_application  # noqa: E402
from engramia_site.gc_freeze import freeze_startup_objects  # noqa: E402
from retrieval.embeddings import warm_up_embedder  # noqa: E402

application = build_application(wsgi_application, settings.ASGI_MOUNTS, settings.WEB_THREADS)
# Each worker imports this module after gunicorn forks it, and takes requests once it has:
# the embedding model is loaded by then, so no first recall waits for it.
embedder_warm_up = warm_up_embedder()
embedder_warm_up.join()
# What the worker loaded lives as long as it: no full collection walks it again.
frozen_at_start = freeze_startup_objects()
