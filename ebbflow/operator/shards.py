"""Sharding ScaledObjects across operator replicas, one Lease per shard.

KEDA runs one active operator. With `--shards N`, each ScaledObject belongs to shard
`hash(namespace/name) mod N` (a stable hash: every replica computes the same), each shard
has its own Lease, and a replica drives the objects of the shards it leads. A replica
campaigns eagerly for its preferred shards (`shard % replicas == ordinal`) and patiently
for the others, so shards spread over the replicas and a lost replica's shards are taken
over once their Leases expire.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from ebbflow.operator.leader import LeaderElector, LeaseTiming
from kube.port import Cluster
from scaler.clock import Clock


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard of an object: a stable hash of `namespace/name`, not Python's salted hash()."""
    digest = hashlib.blake2b(f"{namespace}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


class ShardLeases:
    """Campaigns for every shard's Lease and reports which shards this replica leads."""

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        namespace: str,
        identity: str,
        shards: int,
        on_change: Callable[[frozenset[int]], Awaitable[None]],
        ordinal: int = 0,
        replicas: int = 1,
        timing: LeaseTiming | None = None,
        lease_prefix: str = "ebbflow-operator",
    ) -> None:
        self.shards = shards
        self._on_change = on_change
        self.led: frozenset[int] = frozenset()
        self.electors = [
            LeaderElector(
                cluster,
                clock,
                f"{lease_prefix}-shard-{shard}" if shards > 1 else lease_prefix,
                namespace,
                identity,
                timing,
                on_started=self._changed,
                on_stopped=self._changed,
                eager=shard % max(replicas, 1) == ordinal % max(replicas, 1),
            )
            for shard in range(shards)
        ]

    async def _changed(self) -> None:
        led = frozenset(i for i, e in enumerate(self.electors) if e.leading)
        if led != self.led:
            self.led = led
            await self._on_change(led)

    def owns(self, namespace: str, name: str) -> bool:
        return shard_of(namespace, name, self.shards) in self.led

    async def run(self) -> None:
        tasks = [asyncio.create_task(e.run(), name=f"lease/{e.name}") for e in self.electors]
        try:
            await asyncio.gather(*tasks)
        finally:
            # a cancelled gather has cancelled each elector once already; a second cancel
            # would interrupt the Lease release they do on the way out
            for task in tasks:
                if not task.done() and not task.cancelling():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
