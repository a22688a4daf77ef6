"""PodDisruptionBudgets as the eviction subresource applies them (policy/v1 Eviction).

Shared by the in-memory cluster (`MemoryCluster.evict`) and the REST emulator's
pods/eviction handler, so both refuse exactly the same evictions.

The budget is computed live from the pods, not from a disruption controller's status: a pod
is healthy when it is Running and its Ready condition (if reported) is True; the expected
count is the number of non-terminal pods the budget selects now. The real disruption
controller counts the owning controller's replicas instead, so here a budget in
maxUnavailable or percentages loosens as evicted pods go, unless something recreates them.
Evicting an unhealthy pod is allowed while the budget is met
(`unhealthyPodEvictionPolicy: IfHealthyBudget`, the default) or always (`AlwaysAllow`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kube.port import JSON, ClusterError, Invalid, ServerError, TooManyRequests
from kube.selectors import parse_selector, render_label_selector

EVICTION_RETRY_AFTER = 1.0  # seconds a blocked eviction suggests waiting (kubectl drain: 5 s)
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class EvictionRefusal:
    """Why the eviction subresource refuses: 429 when a budget forbids it, 500 when more
    than one budget selects the pod (kube-apiserver answers both ways)."""

    code: int
    message: str
    causes: tuple[JSON, ...] = ()
    retry_after: float | None = None

    def error(self) -> ClusterError:
        """The port error a client of the real API server gets for this answer."""
        if self.code == 429:
            return TooManyRequests(self.message, retry_after=self.retry_after)
        error = ServerError(self.message)
        error.status = self.code
        return error


def eviction_refusal(pod: JSON, budgets: list[JSON], pods: list[JSON]) -> EvictionRefusal | None:
    """Why evicting `pod` would break a budget, or None when it may go.

    `budgets` and `pods` are the PodDisruptionBudgets and pods of the pod's namespace.
    """
    if (pod.get("status") or {}).get("phase") in _TERMINAL:
        return None
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    labels = (pod.get("metadata") or {}).get("labels") or {}
    covering = [b for b in budgets if _selects(b, labels)]
    if not covering:
        return None
    if len(covering) > 1:
        names = ", ".join(sorted(b["metadata"]["name"] for b in covering))
        return EvictionRefusal(
            500,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            f"does not support ({names}).",
        )
    budget = covering[0]
    selected = [
        p
        for p in pods
        if _selects(budget, (p.get("metadata") or {}).get("labels") or {})
        and (p.get("status") or {}).get("phase") not in _TERMINAL
    ]
    healthy = sum(1 for p in selected if is_healthy(p))
    spec = budget.get("spec") or {}
    desired = desired_healthy(spec, len(selected))
    if is_healthy(pod):
        allowed = healthy - desired >= 1
    else:
        allowed = spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy >= desired
    if allowed:
        return None
    name = budget["metadata"]["name"]
    return EvictionRefusal(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        causes=(
            {
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {name} needs {desired} healthy pods "
                f"and has {healthy} currently",
            },
        ),
        retry_after=EVICTION_RETRY_AFTER,
    )


def desired_healthy(spec: JSON, expected: int) -> int:
    """How many selected pods must stay healthy (minAvailable, or expected - maxUnavailable).

    Percentages round up, as the disruption controller's GetScaledValueFromIntOrPercent does.
    """
    if spec.get("minAvailable") is not None:
        return _scaled(spec["minAvailable"], expected, "minAvailable")
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected, "maxUnavailable"))
    return 0


def is_healthy(pod: JSON) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return True


def _selects(budget: JSON, labels: dict[str, str]) -> bool:
    selector = (budget.get("spec") or {}).get("selector")
    if selector is None:
        return False  # policy/v1: a nil selector selects nothing, an empty one everything
    return parse_selector(render_label_selector(selector)).matches(labels)


def _scaled(value: Any, total: int, field: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"spec.{field}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * total / 100)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise Invalid(f"spec.{field}: must be an integer or a percentage, got {value!r}")
