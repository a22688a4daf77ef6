"""Fault switches of the emulated API server, for tests of retries, backoff and relisting.

    server.faults.http_status("patch", 429, times=2, retry_after=3)   # throttle two PATCHes
    server.faults.http_status("/apis/apps/v1/*/scale", 500)           # fail a path (a glob)
    server.faults.expire_next_watch()                                 # next watch: 410
    server.faults.drop_watches()                                      # end open watch streams
    server.faults.cluster.fail_next("get", NotFound("x"))             # MemoryCluster faults

A pattern is a verb as Kubernetes names it (get, list, watch, create, update, patch, delete,
deletecollection) or, starting with "/", a glob over the request path. Call these from the
server's event loop (ThreadedServer.call does that for servers running in a thread).
"""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass

from kube.apiserver.status import ApiError
from kube.memory import Faults

VERBS = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)


@dataclass
class _Injected:
    pattern: str
    status: int
    retry_after: float | None
    message: str


class HttpFaults:
    """HTTP-level faults, plus the MemoryCluster's own (`cluster`)."""

    def __init__(self, cluster: Faults) -> None:
        self.cluster = cluster
        self._pending: list[_Injected] = []
        self._expire_watches = 0
        self._drop = asyncio.Event()

    def http_status(
        self,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str = "",
    ) -> None:
        """Answer the next `times` requests matching `pattern` with `status` (a Status body;
        a Retry-After header when `retry_after` is given or `status` is 429)."""
        if not pattern.startswith("/") and pattern not in VERBS:
            raise ValueError(
                f"pattern {pattern!r}: expected a verb ({', '.join(sorted(VERBS))}) "
                "or a path glob starting with '/'"
            )
        if not 400 <= status <= 599:
            raise ValueError(f"status {status}: expected an error code (400-599)")
        text = message or f"injected fault: {status} for {pattern}"
        self._pending.extend([_Injected(pattern, status, retry_after, text)] * times)

    def expire_next_watch(self, times: int = 1) -> None:
        """The next `times` watches answer with a 410 Expired ERROR event, as a watch from a
        resourceVersion outside the server's window does."""
        self._expire_watches += times

    def drop_watches(self) -> None:
        """End every open watch stream now, as a server restart or a proxy timeout does."""
        self._drop.set()
        self._drop = asyncio.Event()

    def clear(self) -> None:
        """Forget every pending fault (HTTP and cluster)."""
        self._pending.clear()
        self._expire_watches = 0
        self.cluster.clear()

    # --- used by the server ---------------------------------------------------------------

    def check(self, verb: str, path: str) -> None:
        """Raise the first pending fault that matches this request, consuming it."""
        for index, fault in enumerate(self._pending):
            pattern = fault.pattern
            if pattern == verb or (pattern.startswith("/") and fnmatch.fnmatchcase(path, pattern)):
                del self._pending[index]
                raise ApiError(fault.status, fault.message, retry_after=fault.retry_after)

    def take_watch_expiry(self) -> bool:
        if self._expire_watches:
            self._expire_watches -= 1
            return True
        return False

    @property
    def dropped(self) -> asyncio.Event:
        """Set when the open watches are to end; a fresh Event after each drop."""
        return self._drop
