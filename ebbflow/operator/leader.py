"""Lease-based leader election, as client-go's leaderelection does it, over the Cluster port.

A candidate holds a `coordination.k8s.io/v1` Lease while it renews it every `retry_period`.
It stops acting as leader as soon as it has failed to renew for `renew_deadline`, which is
shorter than `lease_duration`: the old leader has stepped down before anyone else may take
the Lease, so two replicas never drive the same objects at once. Writes carry the
resourceVersion they read, so two candidates racing for an expired Lease cannot both win
(the loser gets 409 Conflict).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kube.port import LEASES, Cluster, ClusterError, Conflict, NotFound
from scaler.clock import Clock

log = logging.getLogger("ebbflow.leader")


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")


def _micro_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LeaderElector:
    """Campaigns for one Lease; calls `on_started` when it leads and `on_stopped` when it stops."""

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        name: str,
        namespace: str,
        identity: str,
        timing: LeaseTiming | None = None,
        on_started: Callable[[], Awaitable[None]] | None = None,
        on_stopped: Callable[[], Awaitable[None]] | None = None,
        eager: bool = True,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self.on_started = on_started
        self.on_stopped = on_stopped
        # an eager candidate takes a free or expired Lease at once; a patient one waits one
        # extra lease duration first, so each replica's preferred shards go to it
        self.eager = eager
        self.leading = False
        self._last_renew = 0.0
        self._free_since: float | None = None

    async def run(self) -> None:
        """Campaign and lead until cancelled; leadership is given up on the way out."""
        try:
            while True:
                await self._tick()
                await self.clock.sleep(self.timing.retry_period)
        finally:
            if self.leading:
                await self._step_down(release=True)

    async def _tick(self) -> None:
        now = self.clock.now()
        try:
            acquired = await self._try_acquire_or_renew(now)
        except ClusterError as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            acquired = False
        if acquired:
            self._last_renew = now
            if not self.leading:
                self.leading = True
                log.info("%s leads %s/%s", self.identity, self.namespace, self.name)
                if self.on_started is not None:
                    await self.on_started()
        elif self.leading and now - self._last_renew >= self.timing.renew_deadline:
            log.warning(
                "%s lost %s/%s (renew deadline passed)", self.identity, self.namespace, self.name
            )
            await self._step_down(release=False)

    async def _try_acquire_or_renew(self, now: float) -> bool:
        try:
            lease = await self.cluster.get(LEASES, self.name, self.namespace)
        except NotFound:
            if not self.eager:  # leave a new Lease to its preferred replica for a while
                self._free_since = self._free_since if self._free_since is not None else now
                if now - self._free_since < self.timing.lease_duration:
                    return False
            try:
                await self.cluster.create(LEASES, self._lease(None, now, transitions=0))
            except ClusterError:
                return False  # someone else created it first
            return True
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _epoch(spec.get("renewTime")) or 0.0
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        if holder and holder != self.identity:
            grace = 0.0 if self.eager else self.timing.lease_duration
            if now < renewed + duration + grace:
                return False  # held by a live leader
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        updated = self._lease(lease, now, transitions)
        try:
            await self.cluster.replace(LEASES, updated)
        except Conflict:
            return False  # another candidate wrote first
        return True

    def _lease(
        self, current: dict[str, Any] | None, now: float, transitions: int
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timing.lease_duration),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
            old = current.get("spec") or {}
            same = old.get("holderIdentity") == self.identity
            spec["acquireTime"] = old.get("acquireTime") if same else _micro_time(now)
        else:
            spec["acquireTime"] = _micro_time(now)
        return {
            "apiVersion": LEASES.api_version,
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def _step_down(self, release: bool) -> None:
        self.leading = False
        if self.on_stopped is not None:
            await self.on_stopped()
        if release:  # a clean shutdown hands over at once instead of after the lease expires
            try:
                lease = await self.cluster.get(LEASES, self.name, self.namespace)
                if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    lease["spec"]["holderIdentity"] = ""
                    lease["spec"]["renewTime"] = _micro_time(0)
                    await self.cluster.replace(LEASES, lease)
            except ClusterError as exc:
                log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
