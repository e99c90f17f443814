"""Django's WSGI application under ASGI, entering its thread once per ordinary request.

A WSGI view runs on a worker thread and the server's I/O on the event loop. A general bridge
(a2wsgi's `WSGIMiddleware`) crosses between the two for every message: the thread asks the loop
for the body, then hands it the response's start, each chunk and the end, and waits each time.
Every crossing wakes the loop and passes the GIL back and forth; under load that came to ~1.7 ms
of a 12 ms API request (`POST /v1/recall` on 2 cores).

Here the loop reads a small body (up to `PREFETCH_BYTES`) before the view starts, and sends a
response that is not streaming after the view has returned: the thread is entered once and left
once. A larger body, or one whose client waits for `100 Continue`, is read from the thread as
it is consumed, and a streaming response (file downloads, static assets, exports) is sent chunk
by chunk as it is produced, as before.

A response that streams from an async iterator (Django's `StreamingHttpResponse` over an async
generator: the Assistants API's streamed runs) leaves the thread as soon as its view returns and
is iterated on the event loop, as Django's own ASGI handler would, so an open stream holds no
thread while it waits on the model. Its thread-sensitive `sync_to_async` calls share one thread
of its own (an asgiref `ThreadSensitiveContext` per response), and a client that disconnects
cancels the iteration, which the generator sees as `CancelledError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
from collections.abc import Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from asgiref.sync import ThreadSensitiveContext

__all__ = ["PREFETCH_BYTES", "WSGIBridge"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Bodies up to this size are read on the loop before the view runs (API calls are far smaller;
# uploads above it are read as the view consumes them, so memory stays bounded).
PREFETCH_BYTES = 256 * 1024


class _Body:
    """wsgi.input: what the loop read before the view ran, then the rest on demand."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, receive: Receive, buffered: bytes, more: bool
    ) -> None:
        self.loop = loop
        self.receive = receive
        self.buffer = bytearray(buffered)
        self.more = more

    def _receive(self) -> None:
        # Called from the view's thread only when the prefetched part is used up.
        message = asyncio.run_coroutine_threadsafe(self.receive(), self.loop).result()
        if message["type"] == "http.disconnect":
            self.more = False
            return
        self.more = message.get("more_body", False)
        self.buffer += message.get("body", b"")

    def read(self, size: int = -1) -> bytes:
        while self.more and (size < 0 or len(self.buffer) < size):
            self._receive()
        if size < 0 or size >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
        return data

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n", 0, limit if limit >= 0 else None)
            if end >= 0:
                return self.read(end + 1)
            if limit >= 0 and len(self.buffer) >= limit:
                return self.read(limit)
            if not self.more:
                return self.read()
            self._receive()

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


def _may_read_ahead(scope: MutableMapping[str, Any], limit: int) -> bool:
    """Whether to read the body before the view: not when the client waits for a `100 Continue`
    (reading would send it before the view could refuse the upload: a 401, a 413), nor when
    it declares a body over the limit."""
    for name, value in scope.get("headers", ()):
        if name == b"expect":
            return False
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            return False
    return True


async def _prefetch(receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The body's first `limit` bytes and whether more follows; None if the client left."""
    buffer, more = bytearray(), True
    while more and len(buffer) < limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        buffer += message.get("body", b"")
        more = message.get("more_body", False)
    return bytes(buffer), more


class _Exchange:
    """One request's response: collected in the thread, sent by the loop unless it streams."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        self.loop = loop
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.sent = False  # the thread sent the whole response itself (streaming)
        self.async_body: Any = None  # a response streaming from an async iterator
        self.async_source: Any = None  # the view's own iterator inside it

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.start = {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [
                (name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
                for name, value in headers
            ],
        }
        return self.chunks.append  # WSGI's legacy write(): buffered like the body

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> None:
        """Call the application (in the worker thread) and take its body."""
        iterable = app(environ, self.start_response)
        try:
            if getattr(iterable, "is_async", False):  # iterated on the loop, in finish()
                self.async_body = getattr(iterable, "streaming_content")  # noqa: B009
                # Django's wrapper does not close the view's iterator when it is closed itself:
                # keep it, so a stream cut short is closed here, in its thread context.
                self.async_source = getattr(iterable, "_iterator", None)
            elif getattr(iterable, "streaming", False):  # Django's streaming and file responses
                self._stream(iterable)
            else:
                self.chunks.extend(iterable)
        finally:
            # Django's request_finished (the thread's pooled connection goes back) comes now,
            # in the view's thread; an async body's generator is not among what this closes.
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def _send_from_thread(self, message: Message) -> None:
        asyncio.run_coroutine_threadsafe(self.send(message), self.loop).result()

    def _stream(self, iterable: Iterable[bytes]) -> None:
        assert self.start is not None, "start_response was not called"
        self._send_from_thread(self.start)
        self.sent = True
        for chunk in itertools.chain(self.chunks, iterable):
            if chunk:
                self._send_from_thread(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
        self._send_from_thread({"type": "http.response.body", "body": b""})

    async def finish(self, receive: Receive) -> None:
        """Send what the application returned (from the loop), unless it streamed it."""
        if self.sent:
            return
        if self.start is None:
            raise RuntimeError("the WSGI application returned without calling start_response")
        if self.async_body is not None:
            await self._stream_async(receive)
            return
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": b"".join(self.chunks)})

    async def _stream_async(self, receive: Receive) -> None:
        """Send the async body as it is produced; a client that leaves cancels it."""
        assert self.start is not None
        async with ThreadSensitiveContext():
            try:
                await self.send(self.start)
                streaming = asyncio.ensure_future(self._send_async_body())
                leaving = asyncio.ensure_future(_disconnected(receive))
                await asyncio.wait({streaming, leaving}, return_when=asyncio.FIRST_COMPLETED)
                if streaming.done():
                    leaving.cancel()
                    streaming.result()
                    return
                streaming.cancel()  # the generator sees CancelledError where it waits
                with contextlib.suppress(asyncio.CancelledError):
                    await streaming
            finally:
                await self.close_async()

    async def close_async(self) -> None:
        """Close the view's iterator, however the stream ended (a no-op once it has)."""
        for iterator in (self.async_body, self.async_source):
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    async def _send_async_body(self) -> None:
        # Closed by _stream_async's close_async, however it ends.
        async for chunk in self.async_body:
            if chunk:
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self.send({"type": "http.response.body", "body": b""})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (nothing else arrives after a whole request)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class WSGIBridge:
    """A WSGI application as an ASGI one, on a fixed pool of `workers` threads."""

    def __init__(self, app: WSGIApp, workers: int, prefetch_bytes: int = PREFETCH_BYTES) -> None:
        self.app = app
        self.prefetch_bytes = prefetch_bytes
        self.executor = ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=workers)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup: nothing to start
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        ahead, more = b"", True
        if _may_read_ahead(scope, self.prefetch_bytes):
            prefetched = await _prefetch(receive, self.prefetch_bytes)
            if prefetched is None:
                return  # the client left before its request was whole: nothing to answer
            ahead, more = prefetched
        environ: dict[str, Any] = build_environ(scope, _Body(loop, receive, ahead, more))  # type: ignore[arg-type,assignment]
        exchange = _Exchange(loop, send)
        run = functools.partial(contextvars.copy_context().run, exchange.run, self.app, environ)
        try:
            await loop.run_in_executor(self.executor, run)
        except BaseException:
            await exchange.close_async()  # an async body taken before the failure
            raise
        await exchange.finish(receive)
