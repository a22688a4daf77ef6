"""What the provisioner keeps for reports: each node's billed life, and its round counters.

The ledger outlives the nodes (a terminated node's record keeps its cost), so a run's node
bill is the sum over it; the counters say how many plans, claims and errors a run had.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodeRecord:
    """One node's life, for cost accounting: launched (billed) until terminated."""

    claim: str
    pool: str
    instance_type: str
    capacity_type: str
    zone: str
    price: float
    launched_at: float
    terminated_at: float | None = None

    def cost(self, now: float, since: float | None = None) -> float:
        """Dollars billed up to `now`, counting only from `since` when given."""
        return self.price * self.seconds(now, since) / 3600

    def seconds(self, now: float, since: float | None = None) -> float:
        """Seconds of life up to `now` (from `since` when given)."""
        end = self.terminated_at if self.terminated_at is not None else now
        begin = self.launched_at if since is None else max(self.launched_at, since)
        return max(0.0, min(end, now) - begin)


@dataclass
class ProvisionerStats:
    plans: int = 0
    claims_created: int = 0
    ice_errors: int = 0
    errors: int = 0
    unschedulable: dict[str, str] = field(default_factory=dict)  # pod key -> reason (latest)
