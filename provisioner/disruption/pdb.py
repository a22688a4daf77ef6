"""PodDisruptionBudgets as pure functions over plain data.

`disruptions_allowed` follows the disruption controller of Kubernetes: the expected count is
the number of matching pods (Kubernetes takes the controller's scale; the pods are what we
see), desired healthy is minAvailable (percentages rounded up) or expected - maxUnavailable
(percentages rounded up), and allowed = healthy - desired healthy, at least 0. A pod matched
by two PDBs cannot be evicted at all (the eviction API refuses it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provisioner.scheduling.model import LabelSelector, Pod
from provisioner.scheduling.topology import pod_matches


@dataclass(frozen=True, slots=True)
class PdbState:
    """A PodDisruptionBudget; `min_available`/`max_unavailable` are ints or "50%" strings.

    `status_disruptions_allowed`: the API server's status.disruptionsAllowed when known; the
    planner then trusts it over its own count (it sees pods on every node, ours may not).
    """

    name: str
    namespace: str = "default"
    # policy/v1: an empty selector matches every pod of the namespace, a null one none
    selector: LabelSelector | None = LabelSelector()  # noqa: RUF009 (frozen, shared safely)
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    always_allow_unhealthy: bool = False  # unhealthyPodEvictionPolicy: AlwaysAllow
    status_disruptions_allowed: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, pod: Pod) -> bool:
        if pod.namespace != self.namespace or self.selector is None:
            return False
        empty = not self.selector.match_labels and not self.selector.match_expressions
        return empty or pod_matches(self.selector, self.namespace, pod)


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text)


def desired_healthy(pdb: PdbState, expected: int) -> int:
    if pdb.min_available is not None:
        return _scaled(pdb.min_available, expected)
    if pdb.max_unavailable is not None:
        return max(0, expected - _scaled(pdb.max_unavailable, expected))
    return 0


def disruptions_allowed(
    pdb: PdbState, pods: Iterable[Pod], unhealthy: frozenset[str] = frozenset()
) -> int:
    """How many healthy matching pods may be evicted now."""
    if pdb.status_disruptions_allowed is not None:
        return max(0, pdb.status_disruptions_allowed)
    matching = [p for p in pods if pdb.matches(p)]
    healthy = sum(1 for p in matching if p.key not in unhealthy)
    return max(0, healthy - desired_healthy(pdb, len(matching)))


def pdbs_of(pod: Pod, pdbs: Sequence[PdbState]) -> list[PdbState]:
    return [b for b in pdbs if b.matches(pod)]


def eviction_blocker(
    pods: Iterable[Pod],
    pdbs: Sequence[PdbState],
    all_pods: Sequence[Pod],
    unhealthy: frozenset[str] = frozenset(),
) -> str | None:
    """Why some pod cannot be evicted at all now (Karpenter's CanEvictPods), or None."""
    allowed = {b.key: disruptions_allowed(b, all_pods, unhealthy) for b in pdbs}
    for pod in pods:
        covering = pdbs_of(pod, pdbs)
        if len(covering) > 1:
            names = ", ".join(b.key for b in covering)
            return f"pod {pod.key} is matched by several PodDisruptionBudgets ({names})"
        for b in covering:
            if pod.key in unhealthy and b.always_allow_unhealthy:
                continue
            if allowed[b.key] == 0:
                return f"PodDisruptionBudget {b.key} allows no disruption (pod {pod.key})"
    return None


def eviction_waves(
    pods: Sequence[Pod],
    pdbs: Sequence[PdbState],
    all_pods: Sequence[Pod],
    unhealthy: frozenset[str] = frozenset(),
) -> list[list[Pod]]:
    """Split `pods` into waves that can each be evicted at once without breaking a PDB.

    The first wave is what may go now; each next wave assumes the pods evicted before are
    healthy again elsewhere (the executor waits for that). Pods no PDB covers, and unhealthy
    pods of an AlwaysAllow PDB, go in the first wave.
    """
    allowed = {b.key: disruptions_allowed(b, all_pods, unhealthy) for b in pdbs}
    waves: list[list[Pod]] = []
    left = list(pods)
    while left:
        room = dict(allowed)
        wave: list[Pod] = []
        later: list[Pod] = []
        for pod in left:
            covering = [
                b
                for b in pdbs_of(pod, pdbs)
                if not (pod.key in unhealthy and b.always_allow_unhealthy)
            ]
            if all(room[b.key] > 0 for b in covering):
                for b in covering:
                    room[b.key] -= 1
                wave.append(pod)
            else:
                later.append(pod)
        if not wave:  # a PDB that never allows a disruption: the rest cannot go
            waves.append(later)
            break
        waves.append(wave)
        left = later
    return waves


def evictable_together(
    pods: Sequence[Pod],
    pdbs: Sequence[PdbState],
    all_pods: Sequence[Pod],
    unhealthy: frozenset[str] = frozenset(),
) -> bool:
    """True when every pod of `pods` may be evicted at once without breaking a PDB."""
    waves = eviction_waves(pods, pdbs, all_pods, unhealthy)
    return (
        len(waves) <= 1
        and (not waves or len(waves[0]) == len(pods))
        and (eviction_blocker(pods, pdbs, all_pods, unhealthy) is None)
    )
