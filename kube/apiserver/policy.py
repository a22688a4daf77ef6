"""Pod eviction (policy/v1 Eviction, honouring PodDisruptionBudgets) and binding (v1 Binding).

The disruption budget is computed live from the pods, not from a disruption controller's
status: a pod is healthy when it is Running and its Ready condition (if reported) is True;
the expected count is the number of non-terminal pods the budget selects now. The real
disruption controller counts the owning controller's replicas instead, so here a budget in
maxUnavailable or percentages loosens as evicted pods go, unless something recreates them.
Evicting an unhealthy pod is allowed while the budget is met
(`unhealthyPodEvictionPolicy: IfHealthyBudget`, the default) or always (`AlwaysAllow`).
Binding writes spec.nodeName, then the PodScheduled condition: watchers see two changes
where kube-apiserver makes one.
"""

from __future__ import annotations

import math
from typing import Any

from kube.apiserver.status import ApiError
from kube.port import JSON
from kube.selectors import parse_selector, render_label_selector

EVICTION_RETRY_AFTER = 1.0  # seconds a blocked eviction suggests waiting (kubectl drain: 5 s)
_TERMINAL = ("Succeeded", "Failed")


def eviction_refusal(pod: JSON, budgets: list[JSON], pods: list[JSON]) -> ApiError | None:
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
        return ApiError(
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
    desired = desired_healthy(budget.get("spec") or {}, len(selected))
    spec = budget.get("spec") or {}
    if is_healthy(pod):
        allowed = healthy - desired >= 1
    else:
        allowed = spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy >= desired
    if allowed:
        return None
    name = budget["metadata"]["name"]
    return ApiError(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {name} needs {desired} healthy pods "
                    f"and has {healthy} currently",
                }
            ]
        },
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


def bound(pod: JSON, node: str) -> tuple[JSON, JSON]:
    """The spec patch and status patch that bind `pod` to `node`; 409 if it is bound."""
    metadata = pod.get("metadata") or {}
    current = (pod.get("spec") or {}).get("nodeName")
    if current:
        raise ApiError(
            409,
            f'Operation cannot be fulfilled on pods/binding "{metadata.get("name")}": pod '
            f'{metadata.get("name")} is already assigned to node "{current}"',
            details={"name": metadata.get("name", ""), "kind": "pods/binding"},
        )
    if metadata.get("deletionTimestamp"):
        raise ApiError(409, f"pod {metadata.get('name')} is being deleted, cannot be assigned")
    conditions = [
        c
        for c in (pod.get("status") or {}).get("conditions") or []
        if isinstance(c, dict) and c.get("type") != "PodScheduled"
    ]
    conditions.append({"type": "PodScheduled", "status": "True"})
    return {"spec": {"nodeName": node}}, {"conditions": conditions}


def _selects(budget: JSON, labels: dict[str, str]) -> bool:
    selector = (budget.get("spec") or {}).get("selector")
    if selector is None:
        return False  # policy/v1: a nil selector selects nothing, an empty one everything
    return parse_selector(render_label_selector(selector)).matches(labels)


def _scaled(value: Any, total: int, field: str) -> int:
    if isinstance(value, bool):
        raise ApiError(422, f"spec.{field}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * total / 100)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ApiError(422, f"spec.{field}: must be an integer or a percentage, got {value!r}")
