"""Pooled keep-alive connections to upstream pods; each relays one exchange at a time.

A response goes from the parser's callbacks straight to the client's transport (what one
read brought, head and body, in one write). The client's write backpressure pauses this
connection's reading and this connection's pauses the client's, so nothing buffers.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

from scaler.interceptor.listener import ClientConnection, RequestBody
from scaler.interceptor.wire import (
    CONTINUE,
    LAST_CHUNK,
    Fields,
    RequestHead,
    framing,
    response_head,
)

IDLE_TIMEOUT = 30.0  # seconds a pooled connection stays open unused


class UpstreamConnection(asyncio.Protocol):
    """One connection to an upstream; httptools calls the `on_*` methods while it parses."""

    def __init__(self, pool: UpstreamPool, address: str) -> None:
        self.pool = pool
        self.address = address
        self._parser = httptools.HttpResponseParser(self)
        self.transport = cast(asyncio.Transport, None)  # set by connection_made
        self.client: ClientConnection | None = None
        self._head: RequestHead | None = None
        self._body: RequestBody | None = None
        self.headers: asyncio.Future[None] | None = None  # resolved by the head, or an error
        self.done: asyncio.Future[None] | None = None  # resolved by the end, or an error
        self.error: str | None = None
        self.replied = False  # a byte of a response arrived: a retry could repeat effects
        self.reusable = True
        self.write_paused = False
        self._out: list[bytes] = []
        self._reason = b""
        self._fields: Fields = []
        self._chunked_out = False  # re-framed as chunks for the client
        self._until_close = False  # RFC 9112 6.3 rule 8: the body ends with the connection
        self._interim = False
        self._upgraded = False
        self._tunnel: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None

    def send(
        self, client: ClientConnection, head: RequestHead, body: RequestBody, request: bytes
    ) -> tuple[asyncio.Future[None], asyncio.Future[None]]:
        """Start one exchange: `request` (the head) and the body go up, the response to
        `client`; futures for the response's head and its end (see `error` after each)."""
        loop = asyncio.get_running_loop()
        self.client, self._head, self._body = client, head, body
        self.headers, self.done = loop.create_future(), loop.create_future()
        self.error, self.replied = None, False
        client.upstream = self
        body.attach(self.transport, request)
        if head.expect_continue and not body.complete:
            client.transport.write(CONTINUE)  # RFC 9110 10.1.1: Expect stopped here
        if client.write_paused:
            self.transport.pause_reading()
        return self.headers, self.done

    def detach(self) -> None:
        """End the exchange; whether the connection can serve another is in `reusable`."""
        done, body, client = self.done, self._body, self.client
        self.reusable = (
            self.reusable
            and done is not None
            and done.done()
            and self.error is None
            and body is not None
            and body.complete
            and not self._upgraded
        )
        if body is not None:
            body.detach()
        if client is not None:
            client.upstream = None
            client.update_reading()
        self.client = self._head = self._body = None
        if self.reusable and not self.transport.is_reading():
            self.transport.resume_reading()

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.write(data)
            return
        self.replied = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._flush()
            if self._upgraded and self.client is not None:
                self._tunnel = self.client.transport
                if rest := data[exc.args[0] :]:
                    self._tunnel.write(rest)
                self.client.tunnel(self.transport)
            else:
                self._fail("an upgrade that was not asked for")
            return
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
            return
        if self._out:
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.pool.forget(self)
        if self._idle is not None:
            self._idle.cancel()
        if self.client is None or self.done is None or self.done.done():
            return
        if self._tunnel is not None or (
            self._until_close and self.headers is not None and self.headers.done()
        ):
            if self._chunked_out:
                self._out.append(LAST_CHUNK)
            self._flush()
            self.done.set_result(None)
            return
        self._fail(f"connection closed ({exc})" if exc else "connection closed")

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.client is not None:
            self.client.update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.client is not None:
            self.client.update_reading()

    def client_writable(self, writable: bool) -> None:
        if writable:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reason = b""
        self._fields = []

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        client, head, body, headers = self.client, self._head, self._body, self.headers
        if client is None or head is None or body is None or headers is None:
            raise ValueError("a response with no request")
        status = self._parser.get_status_code()
        if status < 200 and status != 101:
            self._interim = True
            # RFC 9110 15.2: 1xx go on, but not to HTTP/1.0; 100 was this proxy's to send
            if status != 100 and head.version == "1.1":
                self._out.append(
                    response_head(status, self._reason, self._fields, False, True, "1.1")
                )
            return
        if status == 101 and head.upgrade is None:
            raise ValueError("101 Switching Protocols to a request that asked for no upgrade")
        self._upgraded = status == 101
        upgrade = None
        if self._upgraded:
            upgrade = next((v for n, v in self._fields if n.lower() == b"upgrade"), head.upgrade)
        chunked, has_length = framing(self._fields)
        has_body = status not in (101, 204, 304) and head.method != b"HEAD"
        self._chunked_out = has_body and not has_length and head.version == "1.1"
        self._until_close = has_body and not has_length and not chunked
        client.keep_alive = (
            client.keep_alive
            and head.keep_alive
            and body.complete
            and head.upgrade is None
            and not (has_body and not has_length and not self._chunked_out)
        )
        self._out.append(
            response_head(
                status,
                self._reason,
                self._fields,
                self._chunked_out,
                client.keep_alive,
                head.version,
                upgrade,
            )
        )
        headers.set_result(None)
        if head.method == b"HEAD":
            # RFC 9110 9.3.2: no body follows whatever the fields say; the parser, which
            # does not know the method, would wait for one: this connection is not reused
            self.reusable = False
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.done is None or self.done.done():
            return
        if self._chunked_out:
            self._out += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            self._out.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        elif not self._upgraded and self.done is not None and not self.done.done():
            if self._chunked_out:
                self._out.append(LAST_CHUNK)
            if not self._parser.should_keep_alive():
                self.reusable = False
            self._finish()

    # --- helpers ------------------------------------------------------------------------

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _flush(self) -> None:
        if self._out and self.client is not None:
            self.client.transport.write(b"".join(self._out))
        self._out.clear()

    def _fail(self, error: str) -> None:
        self.error = f"upstream {self.address}: {error}"
        self.reusable = False
        self._out.clear()
        for future in (self.headers, self.done):
            if future is not None and not future.done():
                future.set_result(None)
        self.transport.close()

    def sleep(self) -> None:
        self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.transport.close)

    def wake(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None


class UpstreamPool:
    """Idle keep-alive connections per upstream address, newest reused first."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[str, list[UpstreamConnection]] = {}

    async def acquire(self, address: str) -> tuple[UpstreamConnection, bool]:
        """A connection to `address` (host:port) and whether it was pooled; raises OSError
        or TimeoutError when a new one cannot be made within the connect timeout."""
        idle = self._idle.get(address)
        while idle:
            connection = idle.pop()
            connection.wake()
            if not connection.transport.is_closing():
                return connection, True
        host, _, port = address.rpartition(":")
        async with asyncio.timeout(self.connect_timeout):
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: UpstreamConnection(self, address), host.strip("[]"), int(port)
            )
        return connection, False

    def release(self, connection: UpstreamConnection) -> None:
        connection.detach()
        if connection.reusable and not connection.transport.is_closing():
            self._idle.setdefault(connection.address, []).append(connection)
            connection.sleep()
        else:
            connection.transport.close()

    def forget(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.address)
        if idle and connection in idle:
            idle.remove(connection)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.wake()
                connection.transport.close()
        self._idle.clear()
