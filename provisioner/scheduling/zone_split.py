"""A class's pods split over zones by its hard zone spread or zone anti-affinity.

The quotas (`topology.zone_quotas`) count the matching pods already in each zone: those on
existing nodes, those bound there earlier in this batch, and those earlier classes of this batch
were sent to (the tally kept here), so one batch never skews a spread its pods share.
"""

from __future__ import annotations

from provisioner.scheduling.existing_nodes import ExistingNodes
from provisioner.scheduling.fit import TypeTable
from provisioner.scheduling.model import ZONE, Pod, Unschedulable
from provisioner.scheduling.pod_classes import PodClass
from provisioner.scheduling.topology import hard_spreads, pod_matches, repels, zone_quotas


class ZoneSplitter:
    """Splits classes over zones, one after the other, keeping the tally of the batch."""

    def __init__(
        self, table: TypeTable, existing: ExistingNodes, unschedulable: list[Unschedulable]
    ) -> None:
        self.table = table
        self.existing = existing
        self.unschedulable = unschedulable  # the scheduler's list: pods over quota go there
        self.zone_tally: list[tuple[Pod, str, int]] = []  # pods sent to a zone in this batch

    def zones_for(self, cls: PodClass) -> list[str]:
        """The zones the class may use: its first choice's, and those of nodes it may join."""
        zones: set[str] = set()
        if cls.choices:
            want = cls.choices[0].reqs.get(ZONE)
            zones |= {z for z in self.table.zones if want is None or want.has(z)}
        for i, node in enumerate(self.existing.nodes):
            zone = node.labels.get(ZONE)
            if zone is not None and self.existing.admits(cls, i):
                zones.add(zone)
        return sorted(zones)

    def split_by_zone(self, cls: PodClass) -> list[tuple[str | None, list[Pod]]]:
        """The class's pods per zone (one `None` zone without a zone rule); the rest are
        unschedulable."""
        rep = cls.rep
        spread = next((s for s in hard_spreads(rep) if s.topology_key == ZONE), None)
        existing: dict[str, int] = {}
        blocked: dict[str, bool] = {}
        for i, node in enumerate(self.existing.nodes):
            zone = node.labels.get(ZONE)
            if zone is None:
                continue
            for pod in self.existing.on_node[i]:
                if spread is not None and pod_matches(spread.selector, rep.namespace, pod):
                    existing[zone] = existing.get(zone, 0) + 1
                if repels(rep, pod, ZONE):
                    blocked[zone] = True
        for pod, zone, count in self.zone_tally:
            if spread is not None and pod_matches(spread.selector, rep.namespace, pod):
                existing[zone] = existing.get(zone, 0) + count
            if repels(rep, pod, ZONE):
                blocked[zone] = True
        quota = zone_quotas(rep, len(cls.pods), self.zones_for(cls), existing, blocked)
        if quota is None:
            return [(None, list(cls.pods))]
        out: list[tuple[str | None, list[Pod]]] = []
        start = 0
        for zone in sorted(quota.quotas):
            count = quota.quotas[zone]
            out.append((zone, cls.pods[start : start + count]))
            self.zone_tally.append((rep, zone, count))
            start += count
        for pod in cls.pods[start:]:
            self.unschedulable.append(Unschedulable(pod, quota.reason))
        return out
