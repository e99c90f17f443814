"""Extract a PDF's text in a child process under hard bounds: `python -m memory.pdf_extract`.

The PDF arrives on stdin and the text leaves on stdout (UTF-8). A refused file exits with
REFUSED and the reason on stderr. The parent (memory.services.documents) kills it when it runs
out of time; its memory and CPU are capped here, so a decompression bomb costs this process,
never the web or job worker. Django-free: it imports only pypdf.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
from typing import Any

REFUSED = 3


class Refused(Exception):
    """The PDF passes one of the bounds (or cannot be read); the message says which."""


def _limit_resources(memory_bytes: int, seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # A backstop for the parent's timeout: the kernel stops a child that spins past it.
    resource.setrlimit(resource.RLIMIT_CPU, (seconds + 1, seconds + 2))


def _count_inflated_bytes(limit: int) -> None:
    """Make every FlateDecode stream count towards one total for the whole file."""
    from pypdf import filters, overwrite_configuration

    # No single stream may inflate past the total either (pypdf stops zlib there).
    overwrite_configuration(zlib_maximum_output_length=limit + 1)
    inflate = filters.decompress
    total = 0

    def counted(data: bytes) -> bytes:
        nonlocal total
        result = inflate(data)
        total += len(result)
        if total > limit:
            raise Refused(f"the PDF's streams inflate to more than {limit} bytes")
        return result

    filters.decompress = counted


def extract(data: bytes, *, max_pages: int, max_text_bytes: int, max_inflated: int) -> str:
    """The text of every page, or Refused naming the bound the file passes."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    _count_inflated_bytes(max_inflated)
    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > max_pages:
            raise Refused(f"the PDF has {len(reader.pages)} pages; the limit is {max_pages}")
        parts: list[str] = []
        size = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            size += len(text.encode("utf-8", "replace"))
            if size > max_text_bytes:
                raise Refused(f"the PDF holds more than {max_text_bytes} bytes of text")
            parts.append(text)
    except LimitReachedError as exc:
        raise Refused(f"the PDF's streams inflate to more than {max_inflated} bytes") from exc
    except MemoryError as exc:
        raise Refused("reading the PDF needs more memory than allowed") from exc
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"could not read the PDF: {exc}") from exc
    # U+0000 cannot be stored and lone surrogates are not text: extraction artefacts, dropped.
    return "\n\n".join(parts).replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def main(argv: Any = None) -> int:
    """Read a PDF on stdin, write its text on stdout; exit REFUSED with the reason on stderr."""
    parser = argparse.ArgumentParser(prog="python -m memory.pdf_extract")
    for name in ("max-pages", "max-text-bytes", "max-inflated-bytes", "max-memory", "seconds"):
        parser.add_argument(f"--{name}", type=int, required=True)
    options = parser.parse_args(argv)
    data = sys.stdin.buffer.read()
    _limit_resources(options.max_memory, options.seconds)
    try:
        text = extract(
            data,
            max_pages=options.max_pages,
            max_text_bytes=options.max_text_bytes,
            max_inflated=options.max_inflated_bytes,
        )
    except Refused as exc:
        sys.stderr.write(str(exc)[:500])
        return REFUSED
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
