"""PURE: HTTP/1.1 message heads on the interceptor's proxy path (RFC 9110, RFC 9112).

Fields stay as the parser gave them, `(name, value)` bytes in order, so names keep their
case and repeated fields their order; a lookup lower-cases the name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

import httptools

Field = tuple[bytes, bytes]
Fields = list[Field]

# RFC 9110 7.6.1: these and the fields that Connection names stop at each hop
HOP_BY_HOP = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding", b"upgrade"}
)
VIA = b"Via: 1.1 ebbflow\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"  # RFC 9112 7.1; trailers are not relayed
# RFC 9110 9.2.2: only these may be retried when a connection fails under them
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


def stopping_here(fields: Fields) -> frozenset[bytes]:
    """The lower-cased names of the hop-by-hop fields of a message."""
    names = HOP_BY_HOP
    for name, value in fields:
        if name.lower() == b"connection":
            names = names | {token.strip().lower() for token in value.split(b",")}
    return names


class FieldView(Mapping[str, str]):
    """Fields as a case-insensitive mapping (first value wins), built on first use: only
    routes with header conditions look."""

    def __init__(self, fields: Fields) -> None:
        self._fields = fields
        self._map: dict[str, str] | None = None

    def _lookup(self) -> dict[str, str]:
        if self._map is None:
            self._map = {}
            for name, value in self._fields:
                self._map.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._lookup()[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())


@dataclass(slots=True)
class RequestHead:
    """A parsed request head, with what the proxy needs of it at hand."""

    method: bytes
    target: bytes  # origin-form: path and query
    version: str  # "1.1" or "1.0"
    fields: Fields
    keep_alive: bool
    upgrade: bytes | None  # the Upgrade field of a connection-upgrading request
    host: str = ""
    chunked: bool = False  # RFC 9112 6.1: Transfer-Encoding chunked, else `length` bytes
    length: int = 0
    expect_continue: bool = False

    @property
    def path(self) -> str:
        """The decoded path, for routing."""
        path = self.target.partition(b"?")[0].decode("utf-8", "surrogateescape")
        return unquote(path) if "%" in path else path

    @property
    def view(self) -> FieldView:
        return FieldView(self.fields)

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0

    @property
    def replayable(self) -> bool:
        """Safe to send again on a fresh connection (RFC 9110 9.2.2), having no body."""
        return self.method in IDEMPOTENT and not self.has_body


def request_head(
    method: bytes,
    target: bytes,
    version: str,
    fields: Fields,
    keep_alive: bool,
    upgrade: bool,
) -> RequestHead:
    """The RequestHead of a parsed request (the parser has checked the framing fields)."""
    head = RequestHead(method, target, version, fields, keep_alive, None)
    for name, value in fields:
        lower = name.lower()
        if lower == b"host":
            head.host = value.decode("latin-1")
        elif lower == b"content-length":
            head.length = int(value)
        elif lower == b"transfer-encoding":
            head.chunked = value.lower().rstrip().endswith(b"chunked")
        elif lower == b"expect":
            head.expect_continue = value.lower() == b"100-continue"
        elif lower == b"upgrade" and upgrade:
            head.upgrade = value
    if not target.startswith(b"/") and target != b"*":
        # RFC 9112 3.2.2: absolute-form; its authority is the host (3.2.3)
        url = httptools.parse_url(target)
        if url.host:
            authority = url.host + (b":%d" % url.port if url.port else b"")
            head.host = authority.decode("latin-1")
            head.fields = [f for f in fields if f[0].lower() != b"host"] + [(b"Host", authority)]
        head.target = (url.path or b"/") + (b"?" + url.query if url.query else b"")
    return head


def upstream_request(head: RequestHead, peer: str, address: str) -> bytes:
    """The head sent upstream: end-to-end fields, X-Forwarded-*, Via (RFC 9110 7.6.3)."""
    stop = stopping_here(head.fields)
    out = [head.method, b" ", head.target, b" HTTP/1.1\r\n"]
    forwarded_for = b""
    has_host = has_forwarded_host = has_forwarded_proto = False
    for name, value in head.fields:
        lower = name.lower()
        if lower in stop or lower == b"expect":  # Expect: this proxy sends the 100 itself
            continue
        if lower == b"x-forwarded-for":
            forwarded_for = forwarded_for + b", " + value if forwarded_for else value
            continue
        if lower == b"host":
            has_host = True
        elif lower == b"x-forwarded-host":
            has_forwarded_host = True
        elif lower == b"x-forwarded-proto":
            has_forwarded_proto = True
        out += (name, b": ", value, b"\r\n")
    client = peer.encode()
    out += (b"X-Forwarded-For: ", forwarded_for + b", " + client if forwarded_for else client)
    out.append(b"\r\n")
    if not has_host:  # RFC 9112 3.2: an HTTP/1.1 request carries Host
        out += (b"Host: ", address.encode(), b"\r\n")
    elif not has_forwarded_host:
        out += (b"X-Forwarded-Host: ", head.host.encode("latin-1"), b"\r\n")
    if not has_forwarded_proto:
        out.append(b"X-Forwarded-Proto: http\r\n")
    out.append(VIA)
    if head.upgrade is not None:  # RFC 9110 7.8: an upgrade is relayed, so its fields are
        out += (b"Connection: Upgrade\r\nUpgrade: ", head.upgrade, b"\r\n")
    elif head.chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def response_head(
    status: int,
    reason: bytes,
    fields: Fields,
    chunked: bool,
    keep_alive: bool,
    version: str,
    upgrade: bytes | None = None,
) -> bytes:
    """The head sent to the client: the upstream's end-to-end fields, Via, our framing."""
    stop = stopping_here(fields)
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in fields:
        if name.lower() not in stop:
            out += (name, b": ", value, b"\r\n")
    out.append(VIA)
    if upgrade is not None:
        out += (b"Connection: Upgrade\r\nUpgrade: ", upgrade, b"\r\n")
    elif status >= 200:
        if chunked:
            out.append(b"Transfer-Encoding: chunked\r\n")
        if not keep_alive:
            out.append(b"Connection: close\r\n")
        elif version == "1.0":  # RFC 9112 9.3: an HTTP/1.0 connection persists only if asked
            out.append(b"Connection: keep-alive\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def plain_response(
    status: int, text: str, keep_alive: bool, version: str, fields: Sequence[Field] = ()
) -> bytes:
    """A complete text/plain response of the proxy's own."""
    body = (text + "\n").encode()
    head = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        *fields,
    ]
    reason = HTTPStatus(status).phrase.encode()
    return response_head(status, reason, head, False, keep_alive, version) + body


def framing(fields: Fields) -> tuple[bool, bool]:
    """(chunked, has Content-Length) of a response's fields (RFC 9112 6.1, 6.3)."""
    chunked = has_length = False
    for name, value in fields:
        lower = name.lower()
        if lower == b"transfer-encoding":
            chunked = value.lower().rstrip().endswith(b"chunked")
        elif lower == b"content-length":
            has_length = True
    return chunked, has_length
