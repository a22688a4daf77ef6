"""The Clock port: every wait and every time read of a controller goes through it.

`RealClock` is wall time. `VirtualClock` is an event-driven scheduler for the simulator
and tests: `sleep` parks the caller on a timer, and `run_until` lets every runnable task
run until all are parked, then jumps to the next timer. A week replays in seconds, and
the order of events is fixed by (due time, order of scheduling), so runs are repeatable.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (or since the simulation began)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time and real sleeps."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Virtual time that advances only when every task is waiting on it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = 0
        self._observers: list[Callable[[float, float], None]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sequence += 1
        heapq.heappush(self._timers, (self._now + max(0.0, seconds), self._sequence, future))
        await future

    def on_advance(self, observer: Callable[[float, float], None]) -> None:
        """Call `observer(old, new)` before each jump of time (the simulator's accounting)."""
        self._observers.append(observer)

    @property
    def next_due(self) -> float | None:
        """The time of the next live timer, if any."""
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def settle(self) -> None:
        """Yield until no task is runnable: all of them wait on a timer or on each other."""
        loop = asyncio.get_running_loop()
        # asyncio keeps its runnable callbacks in `_ready` (CPython's BaseEventLoop);
        # yielding until it drains means every other task has parked.
        ready = getattr(loop, "_ready", None)
        if ready is None:  # pragma: no cover - other loop implementations
            for _ in range(100):
                await asyncio.sleep(0)
            return
        await asyncio.sleep(0)
        while ready:  # noqa: ASYNC110 - draining the run queue, not waiting for an event
            await asyncio.sleep(0)

    async def run_until(self, end: float) -> None:
        """Advance time to `end`, waking each timer due on the way, in order."""
        while True:
            await self.settle()
            due = self.next_due
            if due is None or due > end:
                self._advance(end)
                await self.settle()
                return
            _, _, future = heapq.heappop(self._timers)
            self._advance(due)
            future.set_result(None)

    def _advance(self, to: float) -> None:
        if to > self._now:
            for observer in self._observers:
                observer(self._now, to)
            self._now = to
