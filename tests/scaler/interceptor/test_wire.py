"""The proxy's message heads: what goes upstream, what goes back, per RFC 9110 and 9112."""

from __future__ import annotations

import pytest

from scaler.interceptor.wire import (
    FieldView,
    framing,
    plain_response,
    request_head,
    response_head,
    stopping_here,
    upstream_request,
)


def lines(message: bytes) -> list[bytes]:
    return message.split(b"\r\n\r\n")[0].split(b"\r\n")


def test_connection_names_more_fields_that_stop_here() -> None:
    fields = [(b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"1")]
    assert {b"x-hop", b"te", b"upgrade", b"keep-alive"} <= stopping_here(fields)


def test_the_upstream_request_keeps_end_to_end_fields_and_adds_forwarding_ones() -> None:
    fields = [
        (b"Host", b"web.example"),
        (b"Connection", b"X-Hop"),
        (b"X-Hop", b"1"),
        (b"TE", b"trailers"),
        (b"Expect", b"100-continue"),
        (b"X-Forwarded-For", b"203.0.113.9"),
        (b"X-Case", b"Kept"),
        (b"Content-Length", b"3"),
    ]
    head = request_head(b"POST", b"/a?b=1", "1.1", fields, True, False)
    assert (head.host, head.length, head.expect_continue) == ("web.example", 3, True)
    assert lines(upstream_request(head, "10.0.0.7", "10.1.1.1:8080")) == [
        b"POST /a?b=1 HTTP/1.1",
        b"Host: web.example",
        b"X-Case: Kept",
        b"Content-Length: 3",
        b"X-Forwarded-For: 203.0.113.9, 10.0.0.7",
        b"X-Forwarded-Host: web.example",
        b"X-Forwarded-Proto: http",
        b"Via: 1.1 ebbflow",
    ]


def test_a_request_without_host_gets_the_upstream_address_and_a_chunked_body_stays_chunked() -> (
    None
):
    head = request_head(b"PUT", b"/", "1.0", [(b"Transfer-Encoding", b"chunked")], False, False)
    sent = lines(upstream_request(head, "10.0.0.7", "10.1.1.1:8080"))
    assert sent[0] == b"PUT / HTTP/1.1"
    assert b"Host: 10.1.1.1:8080" in sent and b"Transfer-Encoding: chunked" in sent


def test_an_upgrade_is_relayed_with_its_fields() -> None:
    fields = [(b"Host", b"h"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]
    head = request_head(b"GET", b"/ws", "1.1", fields, True, True)
    sent = lines(upstream_request(head, "10.0.0.7", "10.1.1.1:80"))
    assert sent[-2:] == [b"Connection: Upgrade", b"Upgrade: websocket"]


def test_an_absolute_form_target_becomes_origin_form_with_its_authority_as_host() -> None:
    head = request_head(
        b"GET", b"http://web.example:8080/p%20q?x=1", "1.1", [(b"Host", b"x")], True, False
    )
    assert (head.target, head.host, head.path) == (b"/p%20q?x=1", "web.example:8080", "/p q")
    assert head.fields == [(b"Host", b"web.example:8080")]


@pytest.mark.parametrize(
    ("chunked", "keep_alive", "version", "expected"),
    [
        (True, True, "1.1", [b"Transfer-Encoding: chunked"]),
        (False, False, "1.1", [b"Connection: close"]),
        (False, True, "1.0", [b"Connection: keep-alive"]),
        (False, True, "1.1", []),
    ],
)
def test_the_response_head_states_this_hop_framing(
    chunked: bool, keep_alive: bool, version: str, expected: list[bytes]
) -> None:
    fields = [(b"Transfer-Encoding", b"chunked"), (b"Connection", b"X-Hop"), (b"X-Hop", b"1")]
    fields.append((b"X-End", b"keep"))
    sent = lines(response_head(200, b"OK", fields, chunked, keep_alive, version))
    assert sent == [b"HTTP/1.1 200 OK", b"X-End: keep", b"Via: 1.1 ebbflow", *expected]


def test_a_plain_response_has_its_length_and_extra_fields() -> None:
    sent = plain_response(503, "full", True, "1.1", [(b"Retry-After", b"1")])
    assert sent.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Content-Length: 5\r\n" in sent and b"Retry-After: 1\r\n" in sent
    assert sent.endswith(b"\r\n\r\nfull\n")


def test_framing_and_the_field_view() -> None:
    assert framing([(b"Transfer-Encoding", b"gzip, chunked")]) == (True, False)
    assert framing([(b"content-length", b"0")]) == (False, True)
    view = FieldView([(b"X-Tenant", b"a"), (b"x-tenant", b"b")])
    assert (view.get("x-TENANT"), len(view), view.get("missing")) == ("a", 1, None)
