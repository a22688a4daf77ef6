"""A timeline from a live cluster's Prometheus: range queries at the report's step.

Each query reads every selector as `last_over_time(SERIES[step/2])`: the state at each step
(the latest scrape in the half step before it), so a series that stopped (a node removed)
is not counted one step too long. README ("ebbflow report") lists the queries. Runs off the
event loop: prometheus-api-client is synchronous.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ebbflow.report.openmetrics import CAPACITY, DEMAND, SLO_VIOLATIONS
from ebbflow.sim.timeline import (
    Amounts,
    NodeInfo,
    Sample,
    Timeline,
    WorkloadInfo,
    WorkloadState,
)

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


class PrometheusSourceError(RuntimeError):
    """A query failed or returned what the report cannot use; the message names the query."""


def queries(step: float) -> dict[str, str]:
    """The report's PromQL, by purpose."""
    w = f"{max(1, int(step // 2))}s"

    def last(selector: str) -> str:
        return f"last_over_time({selector}[{w}])"

    pod_owner = last('kube_pod_owner{owner_kind="ReplicaSet"}')
    rs_owner = last('kube_replicaset_owner{owner_kind="Deployment"}')
    requests = last('kube_pod_container_resource_requests{resource=~"cpu|memory|nvidia_com_gpu"}')
    # each pod's requests, labelled with its Deployment (pod -> ReplicaSet -> Deployment)
    joined = (
        f"sum by (namespace, deployment, node, pod, resource) ({requests} "
        "* on (namespace, pod) group_left (replicaset) max by (namespace, pod, replicaset) "
        f'(label_replace({pod_owner}, "replicaset", "$1", "owner_name", "(.*)")) '
        "* on (namespace, replicaset) group_left (deployment) "
        "max by (namespace, replicaset, deployment) "
        f'(label_replace({rs_owner}, "deployment", "$1", "owner_name", "(.*)")))'
    )
    return {
        "requests": f"sum by (namespace, deployment, node, resource) ({joined})",
        "pod_requests": f"max by (namespace, deployment, resource) ({joined})",
        "nodes": last("kube_node_labels"),
        "price": last("node_total_hourly_cost"),
        "allocatable": last('kube_node_status_allocatable{resource=~"cpu|memory|nvidia_com_gpu"}'),
        "replicas": last("kube_deployment_status_replicas"),
        "ready": last("kube_deployment_status_replicas_ready"),
        "desired": (
            f"label_replace({last('ebbflow_desired_replicas')}, "
            '"deployment", "$1", "scaledObject", "(.*)")'
        ),
        "labels": last("kube_deployment_labels"),
        "demand": last(DEMAND),
        "capacity": last(CAPACITY),
        "slo": last(SLO_VIOLATIONS),
    }


Matrix = list[dict[str, Any]]
Query = Callable[[str, float, float, float], Matrix]


def http_query(url: str, headers: Mapping[str, str] | None = None) -> Query:
    """Range queries through prometheus-api-client, split to stay under Prometheus' limit."""
    from prometheus_api_client import PrometheusConnect

    client = PrometheusConnect(url=url, headers=dict(headers or {}), disable_ssl=True)

    def run(query: str, start: float, end: float, step: float) -> Matrix:
        merged: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        chunk = step * (MAX_POINTS - 1)
        begin = start
        while begin <= end:
            stop = min(end, begin + chunk)
            try:
                part = client.custom_query_range(
                    query,
                    start_time=datetime.fromtimestamp(begin, UTC),
                    end_time=datetime.fromtimestamp(stop, UTC),
                    step=f"{step:g}",
                )
            except Exception as exc:  # the client raises bare Exception subclasses
                raise PrometheusSourceError(f"query failed: {query}: {exc}") from exc
            for series in part:
                key = tuple(sorted(series["metric"].items()))
                merged.setdefault(key, {"metric": series["metric"], "values": []})
                merged[key]["values"] += series["values"]
            begin = stop + step
        return list(merged.values())

    return run


def timeline_from_prometheus(
    query: Query,
    start: float,
    end: float,
    step: float,
    progress: Callable[[int, int], None] | None = None,
) -> Timeline:
    """Sample [start, end) every `step` seconds from Prometheus."""
    if end <= start:
        raise PrometheusSourceError("the range is empty: end must be after start")
    n = int((end - start) // step)
    if n < 1:
        raise PrometheusSourceError(f"the range is shorter than one step ({step:g}s)")
    duration = n * step
    last_t = start + (n - 1) * step
    q = queries(step)
    results: dict[str, Matrix] = {}
    for i, (name, promql) in enumerate(q.items()):
        results[name] = query(promql, start, last_t, step)
        if progress is not None:
            progress(i + 1, len(q) + 1)
    slo_end = query(q["slo"], end, end, step)
    if progress is not None:
        progress(len(q) + 1, len(q) + 1)

    def index(ts: Any) -> int | None:
        k = round((float(ts) - start) / step)
        return k if 0 <= k < n else None

    def per_deployment(name: str) -> dict[tuple[str, str], dict[int, float]]:
        out: dict[tuple[str, str], dict[int, float]] = {}
        for series in results[name]:
            m = series["metric"]
            key = (m.get("namespace", ""), m.get("deployment", ""))
            values = out.setdefault(key, {})
            for ts, v in series["values"]:
                k = index(ts)
                if k is not None:
                    values[k] = float(v)
        return out

    replicas = per_deployment("replicas")
    ready = per_deployment("ready")
    desired = per_deployment("desired")
    demand = per_deployment("demand")
    capacity = per_deployment("capacity")
    slo = per_deployment("slo")
    labels: dict[tuple[str, str], dict[str, str]] = {}
    for series in results["labels"]:
        m = series["metric"]
        labels[(m.get("namespace", ""), m.get("deployment", ""))] = {
            k[len("label_") :]: v for k, v in m.items() if k.startswith("label_")
        }

    # requests: (node, namespace, deployment) -> sample -> Amounts; per pod from the peak
    held: dict[int, dict[str, dict[tuple[str, str], Amounts]]] = defaultdict(dict)
    for series in results["requests"]:
        m = series["metric"]
        node, key, resource = m.get("node", ""), (m["namespace"], m["deployment"]), m["resource"]
        for ts, v in series["values"]:
            k = index(ts)
            if k is None:
                continue
            a = held[k].setdefault(node, {}).get(key, Amounts())
            held[k][node][key] = a + _amount(resource, float(v))
    deployments = sorted(set(replicas) | set(labels))
    per_pod = _per_pod_requests(results["pod_requests"])
    workloads = tuple(
        WorkloadInfo(
            name=dep,
            namespace=ns,
            labels=labels.get((ns, dep), {}),
            requests=per_pod.get((ns, dep), Amounts()),
            capacity_per_pod=next(iter(capacity.get((ns, dep), {}).values()), None),
        )
        for ns, dep in deployments
    )
    names = {key: key[1] for key in deployments}
    if len(set(names.values())) != len(names):  # the same name in two namespaces
        names = {key: f"{key[0]}/{key[1]}" for key in deployments}
        workloads = tuple(
            WorkloadInfo(
                f"{w.namespace}/{w.name}", w.namespace, w.labels, w.requests, w.capacity_per_pod
            )
            for w in workloads
        )

    nodes = _nodes(results)
    present = _present(results, index)
    samples = []
    for k in range(n):
        states = {
            names[key]: WorkloadState(
                replicas=round(replicas.get(key, {}).get(k, 0.0)),
                ready=round(ready.get(key, {}).get(k, 0.0)),
                pending=0,
                desired=round(desired.get(key, {}).get(k, replicas.get(key, {}).get(k, 0.0))),
                demand=demand.get(key, {}).get(k),
                slo_violation_seconds=slo.get(key, {}).get(k),
            )
            for key in deployments
        }
        sample_nodes: dict[str, dict[str, Amounts]] = {
            node: {} for node, at in present.items() if k in at and node in nodes
        }
        for node, by_key in held.get(k, {}).items():
            if node in sample_nodes:
                sample_nodes[node] = {names[key]: a for key, a in by_key.items() if key in names}
        samples.append(Sample(k * step, states, sample_nodes))
    slo_total: dict[str, float] = {}
    for series in slo_end:
        m = series["metric"]
        key = (m.get("namespace", ""), m.get("deployment", ""))
        if key in names and series["values"]:
            slo_total[names[key]] = float(series["values"][-1][1])
    return Timeline(
        start=start,
        step=step,
        duration=duration,
        workloads=workloads,
        nodes=nodes,
        samples=tuple(samples),
        source="prometheus",
        slo_seconds={names[key]: duration for key in slo if key in names},
        slo_violations=slo_total,
    )


def _amount(resource: str, value: float) -> Amounts:
    if resource == "cpu":
        return Amounts(cpu=value * 1000)
    if resource == "memory":
        return Amounts(memory=value)
    return Amounts(gpu=value)


def _per_pod_requests(matrix: Matrix) -> dict[tuple[str, str], Amounts]:
    """A pod's requests per workload: the largest over the range (pods are alike)."""
    out: dict[tuple[str, str], Amounts] = {}
    for series in matrix:
        m = series["metric"]
        key = (m["namespace"], m["deployment"])
        value = max((float(v) for _, v in series["values"]), default=0.0)
        out[key] = out.get(key, Amounts()) + _amount(m["resource"], value)
    return out


def _present(
    results: Mapping[str, Matrix], index: Callable[[Any], int | None]
) -> dict[str, set[int]]:
    present: dict[str, set[int]] = {}
    for series in results["price"]:
        node = series["metric"].get("node", "")
        for ts, _ in series["values"]:
            k = index(ts)
            if k is not None:
                present.setdefault(node, set()).add(k)
    return present


def _nodes(results: Mapping[str, Matrix]) -> dict[str, NodeInfo]:
    prices: dict[str, float] = {}
    for series in results["price"]:
        if series["values"]:
            prices[series["metric"]["node"]] = float(series["values"][0][1])
    alloc: dict[str, Amounts] = {}
    for series in results["allocatable"]:
        m = series["metric"]
        value = max(float(v) for _, v in series["values"]) if series["values"] else 0.0
        alloc[m["node"]] = alloc.get(m["node"], Amounts()) + _amount(m["resource"], value)
    nodes = {}
    for series in results["nodes"]:
        m = series["metric"]
        name = m.get("node", "")
        if name not in prices:
            continue
        nodes[name] = NodeInfo(
            name=name,
            pool=m.get("label_karpenter_sh_nodepool", ""),
            instance_type=m.get("label_node_kubernetes_io_instance_type", ""),
            capacity_type=m.get("label_karpenter_sh_capacity_type", "on-demand"),
            zone=m.get("label_topology_kubernetes_io_zone", ""),
            price_per_hour=prices[name],
            allocatable=alloc.get(name, Amounts()),
        )
    return nodes
