"""Topology spread and pod anti-affinity, reduced to per-zone quotas and per-node caps.

Honest simplifications (Karpenter's `topology.go` tracks every domain pod by pod):

- zone spread (DoNotSchedule): the batch's pods of a class are water-filled over the zones the
  class may use, counting existing matching pods, so max - min never grows beyond maxSkew;
- hostname spread (DoNotSchedule): a new node is an empty domain, so each node holds at most
  maxSkew matching pods of the class;
- hostname anti-affinity: at most one pod of a self-matching class per node, never next to a pod
  its selector matches; zone anti-affinity: one pod per zone without a matching pod;
- ScheduleAnyway constraints are preferences and are not enforced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provisioner.scheduling.model import (
    HOSTNAME,
    ZONE,
    LabelSelector,
    Operator,
    Pod,
    TopologySpread,
)

UNLIMITED = 1 << 40


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: all matchLabels and all matchExpressions hold."""
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        have = labels.get(req.key)
        if req.operator == Operator.IN and have not in req.values:
            return False
        if req.operator == Operator.NOT_IN and have is not None and have in req.values:
            return False
        if req.operator == Operator.EXISTS and have is None:
            return False
        if req.operator == Operator.DOES_NOT_EXIST and have is not None:
            return False
    return True


def pod_matches(selector: LabelSelector, namespace: str, pod: Pod) -> bool:
    """Selectors in spread and affinity terms look at the owning pod's namespace only."""
    return pod.namespace == namespace and selector_matches(selector, pod.labels)


def hard_spreads(pod: Pod) -> tuple[TopologySpread, ...]:
    return tuple(s for s in pod.topology_spread if s.when_unsatisfiable == "DoNotSchedule")


def unsupported_topology(pod: Pod) -> str | None:
    for spread in hard_spreads(pod):
        if spread.topology_key not in (ZONE, HOSTNAME):
            return f"topology spread on {spread.topology_key} is not supported (zone, hostname)"
        if spread.max_skew < 1:
            return f"topology spread on {spread.topology_key}: maxSkew must be at least 1"
    for term in pod.anti_affinity:
        if term.topology_key not in (ZONE, HOSTNAME):
            return f"pod anti-affinity on {term.topology_key} is not supported (zone, hostname)"
    return None


def node_cap(pod: Pod) -> int:
    """How many pods of this pod's class one node may hold (hostname spread, anti-affinity)."""
    cap = UNLIMITED
    for spread in hard_spreads(pod):
        if spread.topology_key == HOSTNAME and pod_matches(spread.selector, pod.namespace, pod):
            cap = min(cap, spread.max_skew)
    for term in pod.anti_affinity:
        if term.topology_key == HOSTNAME and pod_matches(term.selector, pod.namespace, pod):
            cap = 1
    return cap


def repels(pod: Pod, other: Pod, key: str) -> bool:
    """Whether `pod` and `other` may not share a `key` domain (anti-affinity either way)."""
    return any(
        t.topology_key == key and pod_matches(t.selector, pod.namespace, other)
        for t in pod.anti_affinity
    ) or any(
        t.topology_key == key and pod_matches(t.selector, other.namespace, pod)
        for t in other.anti_affinity
    )


@dataclass(frozen=True, slots=True)
class ZoneQuota:
    quotas: Mapping[str, int]  # zone -> pods of this class to place there
    left_over: int  # pods no zone may take
    reason: str = ""


def zone_quotas(
    pod: Pod,
    count: int,
    zones: Sequence[str],
    existing: Mapping[str, int],
    anti_zone_blocked: Mapping[str, bool],
) -> ZoneQuota | None:
    """Per-zone quotas for `count` pods like `pod`, or None when it has no zone constraint.

    `existing` counts the pods already in each zone that the spread selector matches;
    `anti_zone_blocked` marks zones holding a pod its zone anti-affinity repels.
    """
    spread = next((s for s in hard_spreads(pod) if s.topology_key == ZONE), None)
    anti = any(t.topology_key == ZONE for t in pod.anti_affinity)
    if spread is None and not anti:
        return None
    domains = [z for z in zones if not (anti and anti_zone_blocked.get(z, False))]
    if not domains:
        return ZoneQuota({}, count, "no zone is free of pods its zone anti-affinity repels")
    placed = {z: existing.get(z, 0) for z in domains}
    quotas = dict.fromkeys(domains, 0)
    per_zone_cap = UNLIMITED
    if anti:
        per_zone_cap = 1
    if spread is not None and spread.min_domains and len(domains) < spread.min_domains:
        # fewer domains than minDomains: the global minimum counts as 0
        per_zone_cap = min(per_zone_cap, spread.max_skew)
    left = count
    while left > 0:
        zone = min(
            (z for z in domains if quotas[z] < per_zone_cap and placed[z] < per_zone_cap),
            key=lambda z: (placed[z], z),
            default=None,
        )
        if zone is None:
            break
        if spread is not None and placed[zone] + 1 - min(placed.values()) > spread.max_skew:
            break
        placed[zone] += 1
        quotas[zone] += 1
        left -= 1
    reason = ""
    if left:
        reason = (
            "zone anti-affinity allows one pod per zone"
            if anti
            else f"topology spread on {ZONE} (maxSkew {spread.max_skew if spread else 0}) "
            f"has no zone left"
        )
    return ZoneQuota({z: q for z, q in quotas.items() if q}, left, reason)
