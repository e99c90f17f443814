"""A streamed answer's server-sent events, read as plain JSON (Django-free).

The vendor SDKs turn every streamed event into a typed (pydantic) object. `bench/stream_events.py`
(a 150-token answer from the loopback fake): openai 3.57 spends ~0.2 ms of CPU more per event
than reading it here (43-53 ms against 14-17 ms a stream, Chat Completions and Responses),
anthropic 2.14 ~0.04 ms. A run reads a handful of fields per event, and every open stream pays
that cost for every token, on the web process that also serves the rest of the API. So the
providers let the SDK send the request (authentication, retries, and HTTP errors mapped to its
exceptions, all before the body) through `with_streaming_response`, and read the body here.
Transport failures while reading are raised as the SDK's own exceptions (as the openai SDK's
streams do; the anthropic SDK's let httpx's escape).
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2

from memory.providers.chat.base import ChatError

# What the SDKs' own streams map to their APIConnectionError (anyio's EndOfStream is a TLS
# connection cut short).
_CONNECTION_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)
# SSE lines end with CRLF, LF or CR, and nothing else: str.splitlines (and so httpx's
# iter_lines) would also split on U+2028, U+2029 and U+0085, which JSON strings may hold raw.
_LINE_END = re.compile(rb"\r\n|\r|\n")
# After OpenAI's [DONE], how long the rest of the body may take to arrive: read to its end, the
# connection goes back to the client's pool (what the openai SDK does, with the same limit).
DRAIN_SECONDS = 0.1


async def server_sent_events(
    response: Any,
    *,
    timeout_error: Callable[..., Exception],
    connection_error: Callable[..., Exception],
) -> AsyncIterator[tuple[str | None, Any]]:
    """(event name or None, decoded data) of each event of a streaming `AsyncAPIResponse`.

    Follows the SSE format: `event:` and `data:` fields up to a blank line, several data lines
    joined by newlines, comments and other fields skipped, an event without data skipped, and
    an unfinished last event (no blank line before the body ends) dropped. OpenAI's closing
    `[DONE]` ends the events. timeout_error and connection_error are the SDK's exception classes
    (constructed with `request=`); transport failures while reading are raised as those.
    """
    request = response.http_request
    lines = _lines(response.http_response.aiter_bytes())
    name: str | None = None
    data: list[str] = []
    try:
        while True:
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
            except httpx2.TimeoutException as exc:
                raise timeout_error(request=request) from exc
            except _CONNECTION_ERRORS as exc:
                raise connection_error(request=request) from exc
            if line:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    data.append(value)
                elif field == "event":
                    name = value
                continue
            text = "\n".join(data)
            name_was, name, data = name, None, []
            if text.startswith("[DONE]"):
                await _drain(lines)
                return
            if text:
                yield name_was, json.loads(text)
    finally:
        await lines.aclose()


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """The body's lines (a byte order mark at its start removed)."""
    pending = b""
    first = True
    async for chunk in chunks:
        pending += chunk
        # A CR at the end may be the first half of a CRLF: keep it for the next chunk.
        held = pending.endswith(b"\r")
        *complete, pending = _LINE_END.split(pending[:-1] if held else pending)
        if held:
            pending += b"\r"
        for line in complete:
            text = line.decode("utf-8", errors="replace")
            if first:
                text, first = text.removeprefix("\ufeff"), False
            yield text
    for line in _LINE_END.split(pending)[:-1]:  # complete lines only
        yield line.decode("utf-8", errors="replace")


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read what follows [DONE] for at most DRAIN_SECONDS; failures there do not matter."""
    try:
        with anyio.move_on_after(DRAIN_SECONDS):
            async for _ in lines:
                pass
    except (httpx2.HTTPError, *_CONNECTION_ERRORS):
        pass


@contextmanager
def shaped(source: str, what: str) -> Iterator[None]:
    """Reading one event (`what`, from `source`, the provider's name): a field missing or of
    another type is a ChatError naming both (only around the reading: a programming error
    elsewhere is not blamed on the vendor). Entered once per streamed event: nothing is
    formatted unless it fails."""
    try:
        yield
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise ChatError(f"{source} {what}: unexpected event shape ({detail})") from exc


def error_message(error: Any, default: str) -> str:
    """The message of an error object a stream carried (`{"message": …}`), else default."""
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else default


__all__ = ["DRAIN_SECONDS", "error_message", "server_sent_events", "shaped"]
