"""A timeline as the series a live cluster's Prometheus holds (OpenMetrics text).

The series are the ones `ebbflow.report.prometheus` queries: kube-state-metrics' node, pod
and Deployment series, OpenCost's `node_total_hourly_cost`, the operator's
`ebbflow_desired_replicas`, and three workload SLI recording rules. `promtool tsdb
create-blocks-from openmetrics` turns the text into blocks a Prometheus serves, so one
timeline can be reported from the simulation and from Prometheus, and the two compared.
"""

from __future__ import annotations

from collections.abc import Iterator

from ebbflow.sim.timeline import Amounts, Timeline

DEMAND = "workload:demand_per_second:max"
CAPACITY = "workload:capacity_per_pod:per_second"
SLO_VIOLATIONS = "workload:slo_violation_seconds:total"


def label_name(key: str) -> str:
    """A Kubernetes label key as kube-state-metrics names it: `label_` + [a-zA-Z0-9_]."""
    return "label_" + "".join(c if c.isalnum() else "_" for c in key)


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _pods(held: Amounts, per_pod: Amounts) -> int:
    for total, one in (
        (held.gpu, per_pod.gpu),
        (held.cpu, per_pod.cpu),
        (held.memory, per_pod.memory),
    ):
        if one > 0:
            return round(total / one)
    return 0


def openmetrics_text(timeline: Timeline, shift: float = 0.0) -> str:
    """The timeline's series, sample times moved by `shift` seconds (Prometheus deletes
    blocks older than its retention: move old timelines to recent days)."""
    # a family's series stay together and each series' samples in time order (OpenMetrics)
    families: dict[str, dict[str, list[str]]] = {}

    def add(name: str, labels: str, value: float, t: float) -> None:
        when = round(timeline.start + t + shift, 3)
        stamp = str(int(when)) if when == int(when) else repr(when)
        series = families.setdefault(name, {}).setdefault(labels, [])
        series.append(f"{name}{{{labels}}} {value!r} {stamp}")

    infos = {w.name: w for w in timeline.workloads}
    for w in timeline.workloads:
        owner = _labels(
            namespace=w.namespace,
            replicaset=f"{w.name}-rs",
            owner_kind="Deployment",
            owner_name=w.name,
            owner_is_controller="true",
        )
        deployment = _labels(namespace=w.namespace, deployment=w.name)
        extra = {label_name(k): v for k, v in w.labels.items()}
        for s in timeline.samples:
            state = s.workloads[w.name]
            add("kube_replicaset_owner", owner, 1.0, s.time)
            add(
                "kube_deployment_labels",
                _labels(namespace=w.namespace, deployment=w.name, **extra),
                1.0,
                s.time,
            )
            add("kube_deployment_status_replicas", deployment, float(state.replicas), s.time)
            add("kube_deployment_status_replicas_ready", deployment, float(state.ready), s.time)
            add(
                "ebbflow_desired_replicas",
                _labels(namespace=w.namespace, scaledObject=w.name),
                float(state.desired),
                s.time,
            )
            if state.demand is not None:
                add(DEMAND, deployment, state.demand, s.time)
            if w.capacity_per_pod:
                add(CAPACITY, deployment, w.capacity_per_pod, s.time)
            if state.slo_violation_seconds is not None:
                add(SLO_VIOLATIONS, deployment, state.slo_violation_seconds, s.time)
        if w.name in timeline.slo_violations:  # the total at the end of the period
            add(SLO_VIOLATIONS, deployment, timeline.slo_violations[w.name], timeline.duration)
    for s in timeline.samples:
        for node_name, held in s.nodes.items():
            node = timeline.nodes[node_name]
            add(
                "kube_node_labels",
                _labels(
                    node=node_name,
                    label_karpenter_sh_nodepool=node.pool,
                    label_node_kubernetes_io_instance_type=node.instance_type,
                    label_karpenter_sh_capacity_type=node.capacity_type,
                    label_topology_kubernetes_io_zone=node.zone,
                ),
                1.0,
                s.time,
            )
            add(
                "node_total_hourly_cost",
                _labels(node=node_name, instance_type=node.instance_type),
                node.price_per_hour,
                s.time,
            )
            a = node.allocatable
            for resource, unit, value in _resources(a):
                add(
                    "kube_node_status_allocatable",
                    _labels(node=node_name, resource=resource, unit=unit),
                    value,
                    s.time,
                )
            for name, amounts in held.items():
                w = infos[name]
                for i in range(_pods(amounts, w.requests)):
                    pod = f"{name}-{node_name}-{i}"
                    add(
                        "kube_pod_owner",
                        _labels(
                            namespace=w.namespace,
                            pod=pod,
                            owner_kind="ReplicaSet",
                            owner_name=f"{name}-rs",
                            owner_is_controller="true",
                        ),
                        1.0,
                        s.time,
                    )
                    for resource, unit, value in _resources(w.requests):
                        add(
                            "kube_pod_container_resource_requests",
                            _labels(
                                namespace=w.namespace,
                                pod=pod,
                                container=name,
                                node=node_name,
                                resource=resource,
                                unit=unit,
                            ),
                            value,
                            s.time,
                        )
    return "".join(_lines(families)) + "# EOF\n"


def _resources(a: Amounts) -> Iterator[tuple[str, str, float]]:
    yield "cpu", "core", a.cpu / 1000
    yield "memory", "byte", a.memory
    if a.gpu:
        yield "nvidia_com_gpu", "integer", a.gpu


def _lines(families: dict[str, dict[str, list[str]]]) -> Iterator[str]:
    for name, series in families.items():
        yield f"# TYPE {name} gauge\n"
        for samples in series.values():
            for line in samples:
                yield line + "\n"
