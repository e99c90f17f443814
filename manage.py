#!/usr/bin/env python
"""Django's command-line utility for administrative tasks (same as the `engramia` command)."""

from engramia.cli import main

if __name__ == "__main__":
    main()
