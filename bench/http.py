"""The load generator's HTTP client: plain HTTP/1.1 over kept-alive connections.

The load generator runs on the same cores as the stack it measures, so whatever
its client spends is taken from the API, the worker and the dev server. httpx
spends about as much CPU per request as the API itself (1.5–4 ms); this client
writes a request in one piece and reads the answer by its `Content-Length`
(or its chunks), about a tenth of that. A plant's clients run on their own
devices: the REST side should not pay for the bench's client on the server's cores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_HEAD_END = b"\r\n\r\n"


class HttpError(Exception):
    """The connection failed or the server's answer was not HTTP/1.1 as expected."""


class _ClosedBeforeAnswering(Exception):
    """The connection closed before any byte of an answer came."""


@dataclass(frozen=True)
class Response:
    """An answer: its status, lower-cased headers and body."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


@dataclass
class HttpClient:
    """Requests to one server (`base_url`), at most `max_connections` at a time."""

    base_url: str
    max_connections: int = 100
    timeout: float = 60.0
    _idle: list[_Connection] = field(default_factory=list, init=False)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, not {self.base_url!r}")
        self._host = url.hostname
        self._port = url.port or 80
        self._host_header = url.netloc
        self._slots = asyncio.Semaphore(self.max_connections)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the idle connections."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET `path` (with its query string)."""
        return await self.request("GET", path, None, headers)

    async def post(
        self, path: str, *, json: object = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """POST `path` with `json` as the body (none when it is None)."""
        return await self.request("POST", path, json, headers)

    async def request(
        self, method: str, path: str, body: object, headers: Mapping[str, str] | None
    ) -> Response:
        """Sends one request on an idle connection (or a new one) and reads the whole answer."""
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        lines = [f"{method} {path} HTTP/1.1", f"host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines.append("content-type: application/json")
        if body is not None or method == "POST":
            lines.append(f"content-length: {len(payload)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with self._slots:
            connection = self._idle_connection()
            try:
                async with asyncio.timeout(self.timeout):
                    if connection is None:
                        connection = await self._open()
                        response, keep = await self._exchange(connection, head + payload)
                    else:
                        try:
                            response, keep = await self._exchange(connection, head + payload)
                        except _ClosedBeforeAnswering:
                            # The server closed this kept-alive connection as the request
                            # went out, so it did not take it: once more on a new one.
                            connection.close()
                            connection = await self._open()
                            response, keep = await self._exchange(connection, head + payload)
            except _ClosedBeforeAnswering as err:
                raise HttpError(f"{method} {path}: the server closed the connection") from err
            except BaseException:
                if connection is not None:
                    connection.close()
                raise
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection the server has not closed (uvicorn closes
        one after 5 s idle)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection
            connection.close()
        return None

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[Response, bool]:
        try:
            connection.writer.write(request)
            head = await connection.reader.readuntil(_HEAD_END)
        except asyncio.IncompleteReadError as err:
            if err.partial:
                raise HttpError("the connection closed in the middle of an answer") from err
            raise _ClosedBeforeAnswering from err
        except ConnectionError as err:
            raise _ClosedBeforeAnswering from err
        except asyncio.LimitOverrunError as err:
            # The stream's limit, 64 KiB: a status line and a few headers are far less.
            raise HttpError("the answer's head is too long") from err
        status_line, *header_lines = head[: -len(_HEAD_END)].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if version != "HTTP/1.1" or not rest[:3].isdigit():
            raise HttpError(f"not an HTTP/1.1 answer: {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = await _read_chunks(connection.reader)
        else:
            content = await connection.reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "").lower() != "close"
        return Response(int(rest[:3]), headers, content), keep


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            # Trailers, if any, end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
