"""Routing by host, longest path prefix and headers, as the HTTP add-on routes."""

from __future__ import annotations

import pytest

from scaler.interceptor.routing import Route, RouteTable, ServiceRef


def route(
    name: str, hosts: tuple[str, ...] = (), prefixes: tuple[str, ...] = ("/",), **kw: object
) -> Route:
    return Route(
        key=("default", name),
        target=ServiceRef("default", name, 80),
        hosts=hosts,
        path_prefixes=prefixes,
        **kw,  # type: ignore[arg-type]
    )


TABLE = RouteTable.from_routes(
    [
        route("exact", ("api.example.com",)),
        route("exact-v2", ("api.example.com",), ("/v2", "/v2/admin/x")),
        route("wild", ("*.example.com",)),
        route("wild-deep", ("*.eu.example.com",)),
        route("any", ()),
        route("headed", ("h.example",), headers=(("X-Tenant", "a"),)),
        route("headed-presence", ("h.example",), headers=(("X-Tenant", None),)),
        route("headless", ("h.example",)),
    ]
)


@pytest.mark.parametrize(
    ("host", "path", "headers", "expected"),
    [
        ("api.example.com", "/", {}, "exact"),
        ("API.example.com:8080", "/users", {}, "exact"),  # case and port do not matter
        ("api.example.com", "/v2/items", {}, "exact-v2"),  # longest prefix wins
        ("api.example.com", "/v2/admin/x/y", {}, "exact-v2"),
        ("shop.example.com", "/", {}, "wild"),
        ("a.b.example.com", "/", {}, "wild"),  # wildcards span levels
        ("x.eu.example.com", "/", {}, "wild-deep"),  # the longer wildcard wins
        ("elsewhere.org", "/", {}, "any"),  # no hosts: the catch-all
        ("h.example", "/", {"X-Tenant": "a"}, "headed"),  # a value beats presence only
        ("h.example", "/", {"X-Tenant": "b"}, "headed-presence"),
        ("h.example", "/", {}, "headless"),
    ],
)
def test_the_most_specific_route_wins(
    host: str, path: str, headers: dict[str, str], expected: str
) -> None:
    found = TABLE.match(host, path, headers)
    assert found is not None and found.key[1] == expected


def test_no_catch_all_means_unrouted_hosts_match_nothing() -> None:
    table = RouteTable.from_routes([route("only", ("a.example",), ("/api",))])
    assert table.match("b.example", "/api", {}) is None
    assert table.match("a.example", "/other", {}) is None
