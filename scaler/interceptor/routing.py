"""PURE: which HTTPScaledObject a request belongs to, by host, longest path prefix, headers.

The HTTP add-on's rules: an exact host beats a wildcard (`*.example.com`), a longer
wildcard beats a shorter one, and no hosts (or `*`) is the catch-all. Within a host the
longest path prefix wins, then the route whose header conditions are the most specific.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scaler.http_api import HTTPScaledObject

Key = tuple[str, str]  # (namespace, name) of the HTTPScaledObject


@dataclass(frozen=True)
class ServiceRef:
    """A Service port to forward to: by number (`port`) or by name (`port_name`)."""

    namespace: str
    service: str
    port: int | None = None
    port_name: str | None = None


@dataclass(frozen=True)
class Route:
    """What the interceptor needs of one HTTPScaledObject."""

    key: Key
    target: ServiceRef
    hosts: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ("/",)
    headers: tuple[tuple[str, str | None], ...] = ()
    condition_wait: float | None = None  # None: the interceptor's default
    response_header_timeout: float | None = None
    failover: ServiceRef | None = None
    failover_after: float = 30.0
    rate_window: float = 60.0
    rate_granularity: float = 1.0

    def headers_match(self, headers: Mapping[str, str]) -> bool:
        for name, value in self.headers:
            got = headers.get(name)
            if got is None or (value is not None and got != value):
                return False
        return True


def route_of(hso: HTTPScaledObject) -> Route:
    """The Route of one validated HTTPScaledObject."""
    spec = hso.spec
    namespace = hso.metadata.namespace
    ref = spec.scale_target_ref
    timeouts = spec.timeouts
    failover = spec.cold_start_timeout_failover_ref
    rate = spec.scaling_metric.request_rate if spec.scaling_metric else None
    return Route(
        key=(namespace, hso.metadata.name),
        target=ServiceRef(namespace, ref.service, ref.port, ref.port_name),
        hosts=tuple(h.lower() for h in spec.hosts),
        path_prefixes=tuple(spec.path_prefixes) or ("/",),
        headers=tuple((h.name, h.value) for h in spec.headers),
        condition_wait=(
            timeouts.condition_wait.total_seconds()
            if timeouts and timeouts.condition_wait
            else None
        ),
        response_header_timeout=(
            timeouts.response_header.total_seconds()
            if timeouts and timeouts.response_header
            else None
        ),
        failover=(
            ServiceRef(namespace, failover.service, failover.port, failover.port_name)
            if failover
            else None
        ),
        failover_after=float(failover.timeout_seconds) if failover else 30.0,
        rate_window=rate.window.total_seconds() if rate else 60.0,
        rate_granularity=rate.granularity.total_seconds() if rate else 1.0,
    )


@dataclass
class _HostRoutes:
    # (prefix, routes with that prefix, most header conditions first), longest prefix first
    by_prefix: list[tuple[str, list[Route]]] = field(default_factory=list)


CATCH_ALL = "*"


def _host_only(host: str) -> str:
    host = host.lower()
    if host.startswith("["):  # IPv6 literal, [::1]:8080
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class RouteTable:
    """Routes indexed for matching; rebuild with `from_routes` when they change."""

    def __init__(self, hosts: dict[str, _HostRoutes]) -> None:
        self._hosts = hosts

    @classmethod
    def from_routes(cls, routes: Iterable[Route]) -> RouteTable:
        grouped: dict[str, dict[str, list[Route]]] = {}
        for route in sorted(routes, key=lambda r: r.key):
            for host in route.hosts or (CATCH_ALL,):
                host = CATCH_ALL if host in ("", CATCH_ALL) else host
                for prefix in route.path_prefixes:
                    grouped.setdefault(host, {}).setdefault(prefix, []).append(route)
        table: dict[str, _HostRoutes] = {}
        for host, prefixes in grouped.items():
            entry = _HostRoutes()
            for prefix in sorted(prefixes, key=len, reverse=True):
                ranked = sorted(prefixes[prefix], key=_header_rank)
                entry.by_prefix.append((prefix, ranked))
            table[host] = entry
        return cls(table)

    def match(self, host: str, path: str, headers: Mapping[str, str]) -> Route | None:
        """The route of a request, or None when no HTTPScaledObject claims it."""
        for candidate in _host_candidates(_host_only(host)):
            entry = self._hosts.get(candidate)
            if entry is None:
                continue
            for prefix, routes in entry.by_prefix:
                if path.startswith(prefix):
                    for route in routes:
                        if route.headers_match(headers):
                            return route
        return None

    def __len__(self) -> int:
        return len(self._hosts)


def _header_rank(route: Route) -> tuple[int, int, Key]:
    # more header conditions first; a condition with a value beats one on presence only
    valued = sum(1 for _, value in route.headers if value is not None)
    return (-len(route.headers), -valued, route.key)


def _host_candidates(host: str) -> Iterable[str]:
    """`a.b.example.com`, then `*.b.example.com`, `*.example.com`, `*.com`, then `*`."""
    yield host
    labels = host.split(".")
    for i in range(1, len(labels)):
        yield "*." + ".".join(labels[i:])
    yield CATCH_ALL
