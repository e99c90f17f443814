"""The `engramia` console script: Django's manage.py for the installed package."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a management command; configuration errors end with a one-line reason."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engramia_site.settings")
    argv = list(sys.argv if argv is None else argv)
    from engramia_site.database_check import DatabaseNotReady
    from engramia_site.embedded_db import EmbeddedDatabaseError
    from engramia_site.env import ConfigurationError

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(argv)
    except (ConfigurationError, EmbeddedDatabaseError, DatabaseNotReady) as exc:
        print(f"engramia: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
