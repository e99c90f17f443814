"""Bodies over the size cap, against a real gunicorn as `engramia serve` runs it: the client
reads a 413 in the API's error format (not a connection reset), with or without Content-Length."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024  # ENGRAMIA_MAX_REQUEST_BYTES for the server under test


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory) -> Iterator[int]:
    """gunicorn with serve's worker settings, on the suite's test database."""
    from django.conf import settings

    port = _free_port()
    tmp_home = tmp_path_factory.mktemp("serve-home")
    url = urlsplit(settings.DATABASE_URL)
    test_database = settings.DATABASES["default"]["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "engramia_site.settings_test",
        "ENGRAMIA_DATABASE_URL": urlunsplit(url._replace(path=f"/{test_database}")),
        "ENGRAMIA_MAX_REQUEST_BYTES": str(LIMIT),
    }
    from tenants.management.commands.serve import web_command

    process = subprocess.Popen(
        web_command(host="127.0.0.1", port=port, web_workers=1, home=tmp_home),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


class Exchange:
    """What a client that writes its whole body before reading saw."""

    def __init__(self, port: int, head: bytes, body_parts: Iterator[bytes]) -> None:
        self.sent_everything = False
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            try:
                sock.sendall(head)
                for part in body_parts:
                    sock.sendall(part)
                self.sent_everything = True
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: the answer must still be readable
            self.raw = b""
            while chunk := sock.recv(65536):  # a reset here would raise
                self.raw += chunk
                if self._complete():
                    break

    def _complete(self) -> bool:
        head, found, body = self.raw.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        return bool(found and length and len(body) >= int(length.group(1)))

    @property
    def status(self) -> int:
        return int(self.raw.split(b" ", 2)[1])

    @property
    def json(self) -> Any:
        head, _, body = self.raw.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            size, _, rest = body.partition(b"\r\n")
            body = rest[: int(size, 16)]
        return json.loads(body)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _pieces(data: bytes, size: int = 65536) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
@pytest.mark.parametrize("size", [2 * LIMIT, 6 * 1024 * 1024])
def test_a_body_over_the_cap_is_read_and_answered_with_a_413(server, size, connection):
    body = b'{"task": "' + b"x" * size + b'"}'
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    seen = Exchange(
        server, _head("/v1/recall", {**headers, "Connection": connection}), _pieces(body)
    )
    assert seen.sent_everything  # the client was never cut off while writing
    assert seen.status == 413 and seen.json["errors"][0]["code"] == "request_too_large"


def test_a_huge_body_is_answered_at_once_with_a_413(server):
    body = b"x" * (64 * 1024 * 1024)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    seen = Exchange(server, _head("/v1/recall", headers), _pieces(body))
    assert seen.status == 413 and seen.json["errors"][0]["code"] == "request_too_large"


def _chunked(data: bytes, total: int) -> Iterator[bytes]:
    """data, then filler up to total bytes, as HTTP/1.1 chunks."""
    yield b"%x\r\n" % len(data) + data + b"\r\n"
    piece, sent = b" " * 16384, len(data)
    while sent < total:
        sent += len(piece)
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


@pytest.mark.parametrize("total", [4 * LIMIT, 400 * LIMIT])
def test_a_chunked_body_over_the_cap_is_a_413(server, total):
    head = _head("/v1/recall", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    seen = Exchange(server, head, _chunked(b'{"task": "t"}', total))
    assert seen.status == 413 and seen.json["errors"][0]["code"] == "request_too_large"


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_under_the_cap_is_read(server, project_a):
    from tests.conftest import make_persona

    reader = make_persona("chunked@acme.test", project_a, "reader")
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "Authorization": f"Bearer {reader.secret}",
    }
    seen = Exchange(server, _head("/v1/recall", headers), _chunked(b'{"task": "hello"}', 0))
    assert seen.status == 200 and seen.json["matches"] == []
    refused = Exchange(server, _head("/v1/recall", headers), _chunked(b'{"limit": 0}', 0))
    assert refused.status == 400  # read, parsed and validated: task is missing, limit too low
    assert {error["attr"] for error in refused.json["errors"]} == {"task", "limit"}
