"""Ready endpoints per Service, from a watch of core/v1 Endpoints (and Services for ports).

The interceptor forwards straight to pod endpoints (no second hop through a ClusterIP), so
it knows the moment a Service has a ready address: a held request waits on that, not on
a poll. A Service port given by number is mapped to its name through the Service object,
as kube-proxy does; without the Service, a single-port Endpoints is taken as is.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kube.port import ENDPOINTS, SERVICES, Cluster
from scaler.clock import Clock
from scaler.interceptor.routing import ServiceRef
from scaler.loops import key_of, watch_objects

Key = tuple[str, str]


@dataclass(frozen=True)
class _Endpoints:
    addresses: tuple[str, ...]  # ready IPs
    ports: dict[str, int]  # endpoint port name ("" when unnamed) -> port


def _parse_endpoints(obj: dict[str, Any]) -> _Endpoints:
    addresses: list[str] = []
    ports: dict[str, int] = {}
    for subset in obj.get("subsets") or ():
        subset_ports = {p.get("name") or "": int(p["port"]) for p in subset.get("ports") or ()}
        ready = [a["ip"] for a in subset.get("addresses") or () if a.get("ip")]
        if ready and subset_ports:
            addresses.extend(ready)
            ports.update(subset_ports)
    return _Endpoints(tuple(dict.fromkeys(addresses)), ports)


def _service_ports(obj: dict[str, Any]) -> dict[int, str]:
    ports = (obj.get("spec") or {}).get("ports") or ()
    return {int(p["port"]): p.get("name") or "" for p in ports if "port" in p}


class ServiceEndpoints:
    """Ready addresses per Service, kept in step with the cluster by `run`."""

    def __init__(self, cluster: Cluster, clock: Clock, namespace: str | None = None) -> None:
        self.cluster = cluster
        self.clock = clock
        self.namespace = namespace
        self._endpoints: dict[Key, _Endpoints] = {}
        self._service_ports: dict[Key, dict[int, str]] = {}
        self._ready: dict[Key, asyncio.Event] = {}
        self._turns: dict[Key, Iterator[int]] = {}
        self.listed = asyncio.Event()
        self._listed_kinds: set[str] = set()

    async def run(self) -> None:
        """Watch Endpoints and Services until cancelled."""
        await asyncio.gather(
            watch_objects(
                self.cluster,
                self.clock,
                ENDPOINTS,
                self.namespace,
                self._upsert_endpoints,
                self._remove_endpoints,
                lambda: list(self._endpoints),
                on_listed=lambda: self._mark_listed("endpoints"),
            ),
            watch_objects(
                self.cluster,
                self.clock,
                SERVICES,
                self.namespace,
                self._upsert_service,
                self._remove_service,
                lambda: list(self._service_ports),
                on_listed=lambda: self._mark_listed("services"),
            ),
        )

    def _mark_listed(self, what: str) -> None:
        self._listed_kinds.add(what)
        if len(self._listed_kinds) == 2:
            self.listed.set()

    async def _upsert_endpoints(self, obj: dict[str, Any]) -> None:
        self.set_endpoints(key_of(obj), _parse_endpoints(obj))

    async def _remove_endpoints(self, key: Key) -> None:
        self._endpoints.pop(key, None)

    async def _upsert_service(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        self._service_ports[key] = _service_ports(obj)
        if key in self._endpoints:  # a port name may resolve now: let waiters look again
            self.set_endpoints(key, self._endpoints[key])

    async def _remove_service(self, key: Key) -> None:
        self._service_ports.pop(key, None)

    def set_endpoints(self, key: Key, endpoints: _Endpoints) -> None:
        self._endpoints[key] = endpoints
        if endpoints.addresses:
            event = self._ready.pop(key, None)
            if event is not None:
                event.set()

    def _port(self, ref: ServiceRef, endpoints: _Endpoints) -> int | None:
        name = ref.port_name
        if name is None and ref.port is not None:
            name = self._service_ports.get((ref.namespace, ref.service), {}).get(ref.port)
            if name is None:
                # no Service object: one port is unambiguous; else the number names itself
                if len(endpoints.ports) == 1:
                    return next(iter(endpoints.ports.values()))
                return ref.port if ref.port in endpoints.ports.values() else None
        return endpoints.ports.get(name or "")

    def pick(self, ref: ServiceRef) -> str | None:
        """`host:port` of a ready endpoint of `ref` (round robin), or None when none is ready."""
        key = (ref.namespace, ref.service)
        endpoints = self._endpoints.get(key)
        if endpoints is None or not endpoints.addresses:
            return None
        port = self._port(ref, endpoints)
        if port is None:
            return None
        addresses = endpoints.addresses
        if len(addresses) == 1:
            return f"{addresses[0]}:{port}"
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = itertools.count()
        return f"{addresses[next(turns) % len(addresses)]}:{port}"

    async def wait_ready(self, ref: ServiceRef) -> str:
        """Wait until `ref` has a ready endpoint and return it (cancel to stop waiting)."""
        while True:
            found = self.pick(ref)
            if found is not None:
                return found
            key = (ref.namespace, ref.service)
            event = self._ready.get(key)
            if event is None:
                event = self._ready[key] = asyncio.Event()
            await event.wait()
