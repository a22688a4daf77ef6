"""NodePool disruption budgets: how many of a pool's nodes may be disrupted now, per reason.

Karpenter v1 (`NodePool.GetAllowedDisruptionsByReason`, `Budget.IsActive`): a budget with a
schedule is active while the last cron hit (UTC) is at most `duration` ago; a percentage is
of the pool's initialized nodes, rounded UP (as Kubernetes does for PDBs); the pool's
allowance for a reason is the minimum over the active budgets that name the reason (or name
none); nodes already disrupting (not Ready, or marked for deletion) are subtracted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from croniter import croniter

UNBOUNDED = 2**31 - 1  # Karpenter: math.MaxInt32 when no active budget applies


class Reason(StrEnum):
    """Disruption reasons budgets can name (Karpenter v1 DisruptionReason)."""

    UNDERUTILIZED = "Underutilized"
    EMPTY = "Empty"
    DRIFTED = "Drifted"


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """One entry of spec.disruption.budgets; `nodes` is "5" or "10%"."""

    nodes: str = "10%"
    schedule: str | None = None
    duration: float | None = None  # seconds
    reasons: frozenset[str] | None = None  # None: every reason

    def applies_to(self, reason: str) -> bool:
        return self.reasons is None or reason in self.reasons


def is_active(rule: BudgetRule, now: float) -> bool:
    """True while the rule's window is open (always, for a rule without a schedule)."""
    if rule.schedule is None and rule.duration is None:
        return True
    if rule.schedule is None or rule.duration is None:
        return False  # half a window: fail closed as Karpenter does for a bad schedule
    start = datetime.fromtimestamp(now - rule.duration, UTC)
    next_hit = croniter(rule.schedule, start).get_next(float)
    # the window that began at the last hit is still open when that hit is within duration
    return next_hit <= now


def allowed_by_rule(rule: BudgetRule, total_nodes: int, now: float) -> int:
    """Nodes the rule lets go at once; UNBOUNDED while it is inactive."""
    if not is_active(rule, now):
        return UNBOUNDED
    text = rule.nodes.strip()
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total_nodes / 100)
    return int(text)


def allowed_disruptions(
    rules: Iterable[BudgetRule], total_nodes: int, reason: str, now: float
) -> int:
    """The pool's allowance for `reason`: the minimum over the active budgets naming it."""
    allowed = UNBOUNDED
    for rule in rules:
        if rule.applies_to(reason):
            allowed = min(allowed, allowed_by_rule(rule, total_nodes, now))
    return allowed


def budget_mapping(
    rules: Mapping[str, tuple[BudgetRule, ...]],
    totals: Mapping[str, int],
    disrupting: Mapping[str, int],
    reason: str,
    now: float,
) -> dict[str, int]:
    """Per pool: how many more nodes may be disrupted for `reason` right now (never < 0)."""
    out = {}
    for pool, pool_rules in rules.items():
        allowed = allowed_disruptions(pool_rules, totals.get(pool, 0), reason, now)
        out[pool] = max(0, allowed - disrupting.get(pool, 0))
    return out


def why_blocked(
    rules: Iterable[BudgetRule], total_nodes: int, disrupting: int, reason: str, now: float
) -> str:
    """In words, the budget that binds for `reason` (for the dry run)."""
    binding = min(
        (r for r in rules if r.applies_to(reason)),
        key=lambda r: allowed_by_rule(r, total_nodes, now),
        default=None,
    )
    if binding is None:
        return f"no budget limits {reason}"
    allowed = allowed_by_rule(binding, total_nodes, now)
    window = f" (schedule {binding.schedule!r})" if binding.schedule else ""
    return (
        f"budget nodes={binding.nodes}{window} allows {allowed} of {total_nodes} nodes "
        f"for {reason} at once ({disrupting} already disrupting)"
    )
