"""The proxy port: HTTP/1.1 client connections parsed by llhttp (through httptools).

Each request goes to the handler in arrival order (pipelined ones wait their turn, RFC
9112 9.3.2); its body is held while the request waits for an endpoint, then streamed
upstream as it arrives. A connection whose upgrade the upstream accepted becomes a byte
tunnel (RFC 9110 7.8). A client that disconnects cancels its request's handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Protocol, cast

import httptools

from scaler.interceptor.wire import (
    LAST_CHUNK,
    Field,
    Fields,
    RequestHead,
    plain_response,
    request_head,
)

log = logging.getLogger("ebbflow.interceptor")

HELD_BODY_LIMIT = 64 * 1024  # body bytes held while a request waits, before reading pauses
MAX_HEAD = 64 * 1024  # request line and fields; larger is refused with 431
IDLE_TIMEOUT = 75.0  # seconds an idle keep-alive client connection stays open


class Upstream(Protocol):
    """What a client connection needs of the upstream connection relaying its exchange."""

    write_paused: bool

    def client_writable(self, writable: bool) -> None: ...


class RequestBody:
    """A request's body on its way upstream: held while the request waits, then streamed."""

    __slots__ = ("_chunked", "_client", "_dropping", "_held", "_held_size", "_sink", "complete")

    def __init__(self, client: ClientConnection, chunked: bool, complete: bool) -> None:
        self._client = client
        self._chunked = chunked  # re-framed chunk by chunk: the parser gives decoded data
        self._held: list[bytes] = []
        self._held_size = 0
        self._sink: asyncio.Transport | None = None
        self._dropping = False
        self.complete = complete

    @property
    def over_limit(self) -> bool:
        return self._held_size > HELD_BODY_LIMIT

    def feed(self, data: bytes) -> None:
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._put(data)

    def end(self) -> None:
        self.complete = True
        if self._chunked:
            self._put(LAST_CHUNK)

    def _put(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink.write(data)
        elif not self._dropping:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size > HELD_BODY_LIMIT:
                self._client.update_reading()

    def attach(self, transport: asyncio.Transport, head: bytes) -> None:
        """Write `head` and the held body to `transport` (one write), then stream there."""
        transport.write(head + b"".join(self._held) if self._held else head)
        self._held.clear()
        self._sink = transport
        if self._held_size:
            self._held_size = 0
            self._client.update_reading()

    def detach(self) -> None:
        """The exchange is over: what still arrives of the body is dropped."""
        self._sink = None
        self._dropping = True


Handler = Callable[["ClientConnection", RequestHead, RequestBody], Coroutine[None, None, None]]


class ClientConnection(asyncio.Protocol):
    """One client's connection; httptools calls the `on_*` methods while it parses."""

    def __init__(self, handler: Handler, connections: set[ClientConnection]) -> None:
        self._handler = handler
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._loop = asyncio.get_running_loop()
        self.transport = cast(asyncio.Transport, None)  # set by connection_made
        self.peer = ""
        self.upstream: Upstream | None = None  # relaying the current exchange
        self.keep_alive = True  # once False, the connection closes after this exchange
        self.write_paused = False
        self._reading_paused = False
        self._queue: deque[tuple[RequestHead, RequestBody]] = deque()
        self._receiving: RequestBody | None = None
        self._current: RequestBody | None = None
        self._task: asyncio.Task[None] | None = None
        self._url = b""
        self._fields: Fields = []
        self._head_size = 0
        self._early: list[bytes] | None = None  # after an upgrade request, until the tunnel
        self._tunnel: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.write(data)
        elif self._early is not None:
            self._early.append(data)
        else:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                self._early = [data[exc.args[0] :]]
            except httptools.HttpParserError as exc:
                too_large = self._head_size > MAX_HEAD
                self._refuse(431 if too_large else 400, f"malformed request: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._queue.clear()
        if self._idle is not None:
            self._idle.cancel()
        if self._task is not None:
            self._task.cancel()  # frees a held request's slot, closes its upstream

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.upstream is not None:
            self.upstream.client_writable(False)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.upstream is not None:
            self.upstream.client_writable(True)

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._fields = []
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise ValueError(f"request head over {MAX_HEAD} bytes")
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        head = request_head(
            parser.get_method(),
            self._url,
            parser.get_http_version(),
            self._fields,
            parser.should_keep_alive(),
            parser.should_upgrade(),
        )
        body = RequestBody(self, head.chunked, not head.has_body)
        self._receiving = body
        self._queue.append((head, body))
        if self._task is None:
            self._next()

    def on_body(self, body: bytes) -> None:
        if self._receiving is not None:
            self._receiving.feed(body)

    def on_message_complete(self) -> None:
        if self._receiving is not None:
            self._receiving.end()

    # --- exchanges ----------------------------------------------------------------------

    def _next(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        head, body = self._queue.popleft()
        self._current = body
        self._task = self._loop.create_task(self._handler(self, head, body))
        self._task.add_done_callback(self._exchanged)

    def _exchanged(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("interceptor: a request failed", exc_info=error)
            self.keep_alive = False
        if self._current is not None and not self._current.complete:
            self.keep_alive = False  # the rest of its body would be read as the next request
        if not self.keep_alive:
            self.transport.close()
        elif self._queue:
            self._next()
        else:
            self._idle = self._loop.call_later(IDLE_TIMEOUT, self.transport.close)

    def respond(
        self, head: RequestHead, body: RequestBody, status: int, text: str, *extra: Field
    ) -> None:
        """Answer with a response of the proxy's own."""
        # an upgrade request's connection is not parsed further once refused
        keep_alive = head.keep_alive and body.complete and head.upgrade is None
        self.keep_alive = self.keep_alive and keep_alive
        response = plain_response(status, text, self.keep_alive, head.version, extra)
        if head.method == b"HEAD":  # RFC 9110 9.3.2: the head alone
            response = response.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.transport.write(response)

    def _refuse(self, status: int, text: str) -> None:
        self._early = []  # parse nothing more
        self._queue.clear()
        self.keep_alive = False
        if self._task is None:  # else the exchange in progress ends, then the connection
            self.transport.write(plain_response(status, text, False, "1.1"))
            self.transport.close()

    def update_reading(self) -> None:
        """Pause reading while held body bytes or the upstream's send buffer are full."""
        receiving, upstream = self._receiving, self.upstream
        paused = (receiving is not None and receiving.over_limit) or (
            upstream is not None and upstream.write_paused
        )
        if paused != self._reading_paused:
            self._reading_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def tunnel(self, transport: asyncio.Transport) -> None:
        """From now on the client's bytes go to `transport` as they are."""
        self._tunnel = transport
        if self._early:
            transport.write(b"".join(self._early))
        self._early = None

    def close(self) -> asyncio.Task[None] | None:
        """Close the connection; the task of its exchange in progress, to await."""
        self.transport.close()
        if self._task is not None:
            self._task.cancel()
        return self._task


class Listener:
    """The proxy's server socket and its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: a free port); the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientConnection(self.handler, self.connections), host, port, backlog=1024
        )
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = [task for c in list(self.connections) if (task := c.close()) is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
