"""A v1 Pod (as a dict) turned into the scheduler's `Pod`; bad fields name their path."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from provisioner.quantity import count, cpu_millicores, memory_bytes
from provisioner.scheduling.model import (
    LabelSelector,
    Operator,
    Pod,
    PodAffinityTerm,
    Requirement,
    Resources,
    TaintEffect,
    Toleration,
    TopologySpread,
)

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
_PARSERS: dict[str, Callable[[Any], int]] = {
    "cpu": cpu_millicores,
    "memory": memory_bytes,
    "nvidia.com/gpu": count,
}


def _map(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: must be an object, got {type(value).__name__}")
    return value


def _list(value: object, path: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{path}: must be a list, got {type(value).__name__}")
    return value


def _str(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be a string, got {value!r}")
    return value


def _int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: must be an integer, got {value!r}")
    return value


def _strings(value: object, path: str) -> dict[str, str]:
    out = {}
    for key, item in _map(value, path).items():
        out[str(key)] = _str(item, f"{path}.{key}")
    return out


def _amounts(value: object, path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, parse in _PARSERS.items():
        raw = _map(value, path).get(name)
        if raw is not None:
            try:
                out[name] = parse(raw)
            except ValueError as err:
                raise ValueError(f"{path}.{name}: {err}") from None
    return out


def _container_requests(container: Mapping[str, Any], path: str) -> dict[str, int]:
    """Requests, defaulting each resource to its limit as the API server does."""
    resources = _map(container.get("resources"), f"{path}.resources")
    limits = _amounts(resources.get("limits"), f"{path}.resources.limits")
    requests = _amounts(resources.get("requests"), f"{path}.resources.requests")
    return {**limits, **requests}


def _add(a: dict[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in _PARSERS}


def _max(a: dict[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {k: max(a.get(k, 0), b.get(k, 0)) for k in _PARSERS}


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """Kubernetes' effective pod request: max(sum of containers (+ sidecars), each init
    container on top of the sidecars started before it), plus the pod overhead."""
    containers: dict[str, int] = {}
    for i, c in enumerate(_list(spec.get("containers"), "spec.containers")):
        path = f"spec.containers[{i}]"
        containers = _add(containers, _container_requests(_map(c, path), path))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for i, c in enumerate(_list(spec.get("initContainers"), "spec.initContainers")):
        path = f"spec.initContainers[{i}]"
        container = _map(c, path)
        requests = _container_requests(container, path)
        if container.get("restartPolicy") == "Always":  # a sidecar runs alongside the rest
            sidecars = _add(sidecars, requests)
            init_max = _max(init_max, sidecars)
        else:
            init_max = _max(init_max, _add(sidecars, requests))
    total = _max(init_max, _add(containers, sidecars))
    total = _add(total, _amounts(spec.get("overhead"), "spec.overhead"))
    return Resources(total["cpu"], total["memory"], total["nvidia.com/gpu"], 1)


def _requirement(obj: object, path: str) -> Requirement:
    item = _map(obj, path)
    key = _str(item.get("key"), f"{path}.key")
    try:
        op = Operator(_str(item.get("operator"), f"{path}.operator"))
    except ValueError:
        raise ValueError(
            f"{path}.operator: must be one of {', '.join(o.value for o in Operator)}, "
            f"got {item.get('operator')!r}"
        ) from None
    values = tuple(
        _str(v, f"{path}.values[{j}]")
        for j, v in enumerate(_list(item.get("values"), f"{path}.values"))
    )
    bounded = op in (Operator.GT, Operator.LT)
    if bounded and (len(values) != 1 or not values[0].lstrip("-").isdigit()):
        raise ValueError(f"{path}.values: {op} needs exactly one integer, got {list(values)}")
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        raise ValueError(f"{path}.values: {op} needs at least one value")
    return Requirement(key, op, values)


def _selector(obj: object, path: str) -> LabelSelector:
    sel = _map(obj, path)
    labels = _strings(sel.get("matchLabels"), f"{path}.matchLabels")
    exprs = tuple(
        _requirement(e, f"{path}.matchExpressions[{i}]")
        for i, e in enumerate(_list(sel.get("matchExpressions"), f"{path}.matchExpressions"))
    )
    return LabelSelector(tuple(sorted(labels.items())), exprs)


def _tolerations(value: object) -> tuple[Toleration, ...]:
    out = []
    for i, t in enumerate(_list(value, "spec.tolerations")):
        path = f"spec.tolerations[{i}]"
        item = _map(t, path)
        effect = item.get("effect")
        try:
            parsed = TaintEffect(effect) if effect else None
        except ValueError:
            raise ValueError(f"{path}.effect: unknown taint effect {effect!r}") from None
        operator = item.get("operator") or "Equal"
        if operator not in ("Equal", "Exists"):
            raise ValueError(f"{path}.operator: must be Equal or Exists, got {operator!r}")
        out.append(
            Toleration(
                key=_str(item.get("key") or "", f"{path}.key"),
                operator=operator,
                value=_str(item.get("value") or "", f"{path}.value"),
                effect=parsed,
            )
        )
    return tuple(out)


def _spreads(value: object) -> tuple[TopologySpread, ...]:
    out = []
    for i, s in enumerate(_list(value, "spec.topologySpreadConstraints")):
        path = f"spec.topologySpreadConstraints[{i}]"
        item = _map(s, path)
        skew = _int(item.get("maxSkew"), f"{path}.maxSkew")
        if skew < 1:
            raise ValueError(f"{path}.maxSkew: must be at least 1, got {skew}")
        when = item.get("whenUnsatisfiable") or "DoNotSchedule"
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise ValueError(f"{path}.whenUnsatisfiable: must be DoNotSchedule or ScheduleAnyway")
        min_domains = item.get("minDomains")
        out.append(
            TopologySpread(
                max_skew=skew,
                topology_key=_str(item.get("topologyKey"), f"{path}.topologyKey"),
                when_unsatisfiable=when,
                selector=_selector(item.get("labelSelector"), f"{path}.labelSelector"),
                min_domains=None
                if min_domains is None
                else _int(min_domains, f"{path}.minDomains"),
            )
        )
    return tuple(out)


def _node_affinity(affinity: Mapping[str, Any]) -> tuple[tuple[Requirement, ...], ...]:
    base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    node = _map(affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity")
    required = _map(node.get("requiredDuringSchedulingIgnoredDuringExecution"), base)
    terms = []
    for i, term in enumerate(_list(required.get("nodeSelectorTerms"), f"{base}.nodeSelectorTerms")):
        path = f"{base}.nodeSelectorTerms[{i}]"
        exprs = _list(_map(term, path).get("matchExpressions"), f"{path}.matchExpressions")
        terms.append(
            tuple(_requirement(e, f"{path}.matchExpressions[{j}]") for j, e in enumerate(exprs))
        )
    return tuple(terms)


def _anti_affinity(affinity: Mapping[str, Any]) -> tuple[PodAffinityTerm, ...]:
    base = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    anti = _map(affinity.get("podAntiAffinity"), "spec.affinity.podAntiAffinity")
    out = []
    for i, term in enumerate(
        _list(anti.get("requiredDuringSchedulingIgnoredDuringExecution"), base)
    ):
        path = f"{base}[{i}]"
        item = _map(term, path)
        out.append(
            PodAffinityTerm(
                topology_key=_str(item.get("topologyKey"), f"{path}.topologyKey"),
                selector=_selector(item.get("labelSelector"), f"{path}.labelSelector"),
            )
        )
    return tuple(out)


def pod_from_manifest(obj: Mapping[str, Any]) -> Pod:
    """Parse a v1 Pod: requests, selectors, affinity, tolerations, spread, owner, priority.

    Raises ValueError naming the field path (`spec.containers[0].resources.requests.cpu: ...`).
    """
    meta = _map(obj.get("metadata"), "metadata")
    spec = _map(obj.get("spec"), "spec")
    name = _str(meta.get("name"), "metadata.name")
    annotations = _strings(meta.get("annotations"), "metadata.annotations")
    owner = None
    for i, ref in enumerate(_list(meta.get("ownerReferences"), "metadata.ownerReferences")):
        item = _map(ref, f"metadata.ownerReferences[{i}]")
        if item.get("controller") is True:
            kind = _str(item.get("kind"), f"metadata.ownerReferences[{i}].kind")
            owner = f"{kind}/{_str(item.get('name'), f'metadata.ownerReferences[{i}].name')}"
    affinity = _map(spec.get("affinity"), "spec.affinity")
    priority = spec.get("priority")
    return Pod(
        name=name,
        namespace=_str(meta.get("namespace") or "default", "metadata.namespace"),
        requests=pod_requests(spec),
        labels=_strings(meta.get("labels"), "metadata.labels"),
        node_selector=_strings(spec.get("nodeSelector"), "spec.nodeSelector"),
        node_affinity=_node_affinity(affinity),
        tolerations=_tolerations(spec.get("tolerations")),
        topology_spread=_spreads(spec.get("topologySpreadConstraints")),
        anti_affinity=_anti_affinity(affinity),
        owner=owner,
        priority=0 if priority is None else _int(priority, "spec.priority"),
        do_not_disrupt=annotations.get(DO_NOT_DISRUPT) == "true",
    )
