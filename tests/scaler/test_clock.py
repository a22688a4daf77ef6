"""VirtualClock: time jumps from timer to timer, in order, only when every task waits."""

from __future__ import annotations

import asyncio

from scaler.clock import VirtualClock


async def test_sleepers_wake_in_due_order_at_their_virtual_time() -> None:
    clock = VirtualClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 30), ("a", 10), ("b", 10))]
    await clock.run_until(125.0)
    assert woke == [("a", 110.0), ("b", 110.0)]  # equal times wake in scheduling order
    assert clock.now() == 125.0
    await clock.run_until(200.0)
    assert woke[-1] == ("c", 130.0)
    await asyncio.gather(*tasks)


async def test_time_waits_for_work_triggered_by_a_wakeup() -> None:
    clock = VirtualClock()
    queue: asyncio.Queue[float] = asyncio.Queue()
    seen: list[tuple[float, float]] = []

    async def producer() -> None:
        for _ in range(3):
            await clock.sleep(60)
            await queue.put(clock.now())

    async def consumer() -> None:
        while True:
            sent = await queue.get()
            await asyncio.sleep(0)  # a chain of ready callbacks, not a timer
            seen.append((sent, clock.now()))

    tasks = [asyncio.create_task(producer()), asyncio.create_task(consumer())]
    await clock.run_until(1000)
    assert seen == [(60, 60), (120, 120), (180, 180)], "each item handled before time moves on"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_observers_see_every_jump_and_cancelled_sleeps_are_skipped() -> None:
    clock = VirtualClock()
    jumps: list[tuple[float, float]] = []
    clock.on_advance(lambda old, new: jumps.append((old, new)))
    cancelled = asyncio.create_task(clock.sleep(5))
    kept = asyncio.create_task(clock.sleep(20))
    await asyncio.sleep(0)
    cancelled.cancel()
    await clock.run_until(50)
    assert jumps == [(0, 20), (20, 50)]
    assert kept.done() and cancelled.cancelled()
