"""Existing nodes with free room: step 3 of the scheduler (`scheduler.py`), filled before any
new node is bought.

Tracks, across the batch, each node's room left and the pods on it (those already there and
those bound in this batch), so that taints, node affinity, hostname anti-affinity and the
per-node caps of hostname spreads hold as pods are added.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from provisioner.scheduling.fit import vector
from provisioner.scheduling.model import HOSTNAME, ZONE, ExistingNode, Pod
from provisioner.scheduling.pod_classes import PodClass
from provisioner.scheduling.requirements import labels_satisfy
from provisioner.scheduling.taints import untolerated
from provisioner.scheduling.topology import UNLIMITED, hard_spreads, pod_matches, repels


class ExistingNodes:
    """The cluster's nodes, by name, and the pods this batch binds to them."""

    def __init__(self, existing: Sequence[ExistingNode]) -> None:
        self.nodes = sorted(existing, key=lambda n: n.name)
        self.room = [vector(n.allocatable) - vector(n.requested) for n in self.nodes]
        self.on_node: list[list[Pod]] = [list(n.pods) for n in self.nodes]
        self.bindings: dict[str, str] = {}

    def admits(self, cls: PodClass, i: int) -> bool:
        """Whether node `i` may hold pods of `cls`: taints, node affinity, anti-affinity."""
        node = self.nodes[i]
        if untolerated(cls.rep.tolerations, node.taints) is not None:
            return False
        if not any(labels_satisfy(node.labels, term) is None for term in cls.terms):
            return False
        return not any(repels(cls.rep, other, HOSTNAME) for other in self.on_node[i])

    def fill(self, cls: PodClass, pods: list[Pod], zone: str | None) -> list[Pod]:
        """Bind as many of `pods` as fit on existing nodes (of `zone`); returns the rest."""
        for i, node in enumerate(self.nodes):
            if not pods:
                break
            if zone is not None and node.labels.get(ZONE) != zone:
                continue
            if not self.admits(cls, i):
                continue
            d = cls.requests
            positive = d > 0
            room = self.room[i]
            if np.any(room < 0):
                continue
            n = int((room[positive] // d[positive]).min()) if positive.any() else len(pods)
            if cls.cap < UNLIMITED:
                here = sum(1 for p in self.on_node[i] if _same_spread_group(cls.rep, p))
                n = min(n, cls.cap - here)
            n = min(n, len(pods))
            if n <= 0:
                continue
            for pod in pods[:n]:
                self.bindings[pod.key] = node.name
            self.on_node[i].extend(pods[:n])
            self.room[i] = room - d * n
            pods = pods[n:]
        return pods


def _same_spread_group(rep: Pod, other: Pod) -> bool:
    """Pods counted against a class's per-node cap: those its hostname selectors match."""
    return any(
        s.topology_key == HOSTNAME and pod_matches(s.selector, rep.namespace, other)
        for s in hard_spreads(rep)
    ) or any(
        t.topology_key == HOSTNAME and pod_matches(t.selector, rep.namespace, other)
        for t in rep.anti_affinity
    )
