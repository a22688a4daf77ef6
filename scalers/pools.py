"""Connection pools shared by every scaler of a process, and the circuit breaker.

One aiohttp session serves every HTTP-based scaler; other clients (Kafka, Redis, NATS,
Postgres) are shared per endpoint and credentials through `shared`. A circuit breaker per
endpoint makes a dead server cost one timeout per interval, not one per trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import aiohttp

from scalers.base import SourceUnreachable

T = TypeVar("T")


class CircuitOpen(SourceUnreachable):
    """The endpoint failed recently; not tried again until its interval passes."""


class CircuitBreaker:
    """Per endpoint: after a failure, fail fast for `open_seconds`, then let one try through."""

    def __init__(self, now: Callable[[], float] = time.monotonic, open_seconds: float = 30.0):
        self._now = now
        self.open_seconds = open_seconds
        self._open_until: dict[Hashable, tuple[float, str]] = {}
        self._trial: dict[Hashable, asyncio.Lock] = {}

    def is_open(self, key: Hashable) -> bool:
        entry = self._open_until.get(key)
        return entry is not None and self._now() < entry[0]

    async def call(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        entry = self._open_until.get(key)
        if entry is not None and self._now() < entry[0]:
            raise CircuitOpen(f"{entry[1]} (not retried for {entry[0] - self._now():.0f}s)")
        lock = self._trial.setdefault(key, asyncio.Lock())
        async with lock:  # half-open: one read at a time tests a recovering endpoint
            entry = self._open_until.get(key)
            if entry is not None and self._now() < entry[0]:
                raise CircuitOpen(f"{entry[1]} (not retried for {entry[0] - self._now():.0f}s)")
            try:
                result = await read()
            except SourceUnreachable as exc:
                self._open_until[key] = (self._now() + self.open_seconds, str(exc))
                raise
            self._open_until.pop(key, None)
            return result


class Pools:
    """Clients shared across scalers; `close()` releases all of them."""

    def __init__(self, now: Callable[[], float] = time.monotonic, open_seconds: float = 30.0):
        self.breaker = CircuitBreaker(now, open_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._shared: dict[Hashable, Any] = {}
        self._closers: dict[Hashable, Callable[[Any], Awaitable[None]]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def http(self) -> aiohttp.ClientSession:
        """The process's one HTTP session (keep-alive pooled; per-request timeouts)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=256, limit_per_host=32)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def shared(
        self,
        key: Hashable,
        create: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> T:
        """The client for `key`, created once (concurrent callers wait for the first)."""
        if key in self._shared:
            return self._shared[key]  # type: ignore[no-any-return]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._shared:
                self._shared[key] = await create()
                self._closers[key] = close
        return self._shared[key]  # type: ignore[no-any-return]

    async def discard(self, key: Hashable) -> None:
        """Close and forget the client for `key` (after it broke its connection)."""
        client = self._shared.pop(key, None)
        closer = self._closers.pop(key, None)
        if client is not None and closer is not None:
            # a broken client may fail to close; it is gone either way
            with contextlib.suppress(Exception):
                await closer(client)

    async def close(self) -> None:
        for key in list(self._shared):
            await self.discard(key)
        if self._session is not None:
            await self._session.close()
            self._session = None
