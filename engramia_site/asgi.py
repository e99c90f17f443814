"""ASGI entry point, what `engramia serve` runs on uvicorn workers.

Most of the site (the API's hot paths, the admin) runs as Django's WSGI application on a fixed
pool of threads, each keeping its database connection: Django's own ASGI handler would start a
thread, and so a new database connection, for every request (2-3x the latency of a recall).
Paths that hold a response open (streamed runs, MCP sessions) are mounted in
`settings.ASGI_MOUNTS` and wait on the event loop instead of holding a thread.
"""

import os
import warnings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engramia_site.settings")
# WhiteNoise answers static files with a synchronous file iterator, which Django's ASGI handler
# reads whole (admin assets: small); the warning would be logged for each of them.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")

from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi_application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (configured by get_wsgi_application)

from engramia_site.asgi_mounts import build_application  # noqa: E402
from retrieval.embeddings import warm_up_embedder  # noqa: E402

application = build_application(wsgi_application, settings.ASGI_MOUNTS, settings.WEB_THREADS)
# Each worker imports this module after gunicorn forks it: the model loads while it starts.
embedder_warm_up = warm_up_embedder()
