"""The controller's informers: its cache of pods, Nodes, NodeClaims, NodePools and PDBs.

Each watched kind has an upsert, a remove and a list of known keys for `watch_objects`. Beside
the objects it keeps what the disruption controller reads: when a pod last arrived on or left
each node, when each node became Ready, and a generation bumped on every change it plans
from. A pending pod wakes the batcher; a Node that appears marks its claim Registered; a
NodeClaim that goes releases its pods. `ClusterInformers` is a base of
`ProvisioningController`, whose `__init__` holds the state.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from kube.port import JSON
from provisioner.api import NodePool
from provisioner.claims import NodeClaimLifecycle
from provisioner.manifests import bound_node, is_pending, node_is_ready
from scaler.loops import key_of, watch_objects

log = logging.getLogger("ebbflow.provisioner")


class ClusterInformers(NodeClaimLifecycle):
    """Keeps the controller's cache in step with the cluster's watch events."""

    # the controller's state this part reads and writes (set in its __init__)
    pods: dict[str, JSON]
    pdbs: dict[str, JSON]
    last_pod_event: dict[str, float]
    initialized_at: dict[str, float]
    generation: int

    async def _watch(self, kind: Any, upsert: Any, remove: Any, known: Any) -> None:
        await watch_objects(self.cluster, self.clock, kind, None, upsert, remove, known)

    async def _upsert_pod(self, obj: JSON) -> None:
        key = "/".join(key_of(obj))
        old = self.pods.get(key)
        self.pods[key] = obj
        before, after = bound_node(old) if old else None, bound_node(obj)
        if before != after:
            self._pod_event(before, after)
        elif old is None:
            self.generation += 1  # a new pending pod takes room first in disruption plans
        if is_pending(obj) and key not in self.nominated:
            self._arrivals += 1
            self._wake.set()

    async def _remove_pod(self, key: tuple[str, str]) -> None:
        name = "/".join(key)
        old = self.pods.pop(name, None)
        self.nominated.pop(name, None)
        self._pod_event(bound_node(old) if old else None, None)

    def _pod_event(self, *nodes: str | None) -> None:
        """A pod arrived on or left these nodes (Karpenter's lastPodEventTime)."""
        self.generation += 1
        for node in nodes:
            if node:
                self.last_pod_event[node] = self.clock.now()

    def _pod_keys(self) -> list[tuple[str, str]]:
        return [(k.split("/", 1)[0], k.split("/", 1)[1]) for k in self.pods]

    async def _upsert_node(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        self.nodes[name] = obj
        self.generation += 1
        if node_is_ready(obj):
            self.initialized_at.setdefault(name, self.clock.now())
        claim = self.claims.get(name)
        if claim is not None and not claim.get("status", {}).get("nodeName"):
            await self._mark_registered(name, obj)

    async def _remove_node(self, key: tuple[str, str]) -> None:
        self.nodes.pop(key[1], None)
        self.initialized_at.pop(key[1], None)
        self.last_pod_event.pop(key[1], None)
        self.generation += 1

    def _node_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.nodes]

    async def _upsert_claim(self, obj: JSON) -> None:
        self.claims[obj["metadata"]["name"]] = obj
        self.generation += 1

    async def _remove_claim(self, key: tuple[str, str]) -> None:
        self.claims.pop(key[1], None)
        self._release(key[1])
        self.generation += 1

    def _claim_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.claims]

    async def _upsert_pool(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        self.generation += 1
        try:
            self.pools[name] = NodePool.model_validate(obj)
        except ValidationError as exc:
            self.pools.pop(name, None)
            log.warning("NodePool %s is invalid and ignored: %s", name, exc)

    async def _remove_pool(self, key: tuple[str, str]) -> None:
        self.pools.pop(key[1], None)

    def _pool_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.pools]

    async def _upsert_pdb(self, obj: JSON) -> None:
        self.pdbs["/".join(key_of(obj))] = obj
        self.generation += 1

    async def _remove_pdb(self, key: tuple[str, str]) -> None:
        self.pdbs.pop("/".join(key), None)
        self.generation += 1

    def _pdb_keys(self) -> list[tuple[str, str]]:
        return [(k.split("/", 1)[0], k.split("/", 1)[1]) for k in self.pdbs]
