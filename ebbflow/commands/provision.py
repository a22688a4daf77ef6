"""`ebbflow provision plan`: the dry-run of the node provisioner."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from ebbflow.commands.common import Output, err, fail, out, print_json

app = typer.Typer(help="The node provisioner: plan nodes for pending pods.", no_args_is_help=True)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Job")


class InputError(Exception):
    pass


def _documents(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}") from None
    out_docs = []
    for number, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            raise InputError(f"{path}:doc {number}: must be a mapping (a Kubernetes object)")
        if doc.get("kind") == "List":
            out_docs += [(number, item) for item in doc.get("items") or []]
        else:
            out_docs.append((number, doc))
    return out_docs


def load_pods(path: Path) -> tuple[list[Any], dict[str, list[Any]]]:
    """Pending pods, and pods already bound to a node (by node name), from Pods and workloads.

    A Deployment, StatefulSet, ReplicaSet or Job stands for `replicas` (or `parallelism`)
    copies of its pod template, all pending.
    """
    from provisioner.scheduling.pods import pod_from_manifest

    pending: list[Any] = []
    bound: dict[str, list[Any]] = {}
    for number, doc in _documents(path):
        kind = doc.get("kind")
        where = f"{path}:doc {number}"
        try:
            if kind == "Pod":
                pod = pod_from_manifest(doc)
                node = (doc.get("spec") or {}).get("nodeName")
                if node:
                    bound.setdefault(node, []).append(pod)
                else:
                    pending.append(pod)
            elif kind in WORKLOAD_KINDS:
                pending += _workload_pods(doc, pod_from_manifest)
            else:
                err.print(f"[yellow]warning[/yellow] {where}: skipping kind {kind!r}")
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    return pending, bound


def _workload_pods(doc: dict[str, Any], parse: Any) -> list[Any]:
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    name = meta.get("name", "workload")
    template = spec.get("template")
    if not isinstance(template, dict):
        raise ValueError("spec.template: required for a workload")
    count = spec.get("parallelism", 1) if doc["kind"] == "Job" else spec.get("replicas", 1)
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"spec.replicas: must be a non-negative integer, got {count!r}")
    pod_meta = dict(template.get("metadata") or {})
    pod_meta.setdefault("namespace", meta.get("namespace", "default"))
    pod_meta["name"] = f"{name}-0"
    pod_meta["ownerReferences"] = [
        {
            "apiVersion": doc.get("apiVersion", "apps/v1"),
            "kind": doc["kind"],
            "name": name,
            "uid": name,
            "controller": True,
        }
    ]
    first = parse(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": template.get("spec") or {},
        }
    )
    return [replace(first, name=f"{name}-{i}") for i in range(count)]


def load_pools(path: Path) -> list[Any]:
    from pydantic import ValidationError

    from provisioner.api import NodePool
    from scaler.manifests import issues_from

    pools = []
    for number, doc in _documents(path):
        if doc.get("kind") != "NodePool":
            continue
        try:
            pools.append(NodePool.model_validate(doc))
        except ValidationError as exc:
            issues = issues_from(exc, str(path), number)
            raise InputError("\n".join(str(i) for i in issues)) from None
    if not pools:
        raise InputError(f"{path}: no NodePool in the file")
    return pools


def load_nodes(path: Path, bound: dict[str, list[Any]]) -> list[Any]:
    from provisioner.manifests import node_is_ready, resources_of, taints_of
    from provisioner.scheduling.model import NODEPOOL, ExistingNode

    nodes = []
    for number, doc in _documents(path):
        if doc.get("kind") != "Node":
            continue
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise InputError(f"{path}:doc {number}: metadata.name: required")
        labels = meta.get("labels") or {}
        try:
            allocatable = resources_of((doc.get("status") or {}).get("allocatable"))
            taints = taints_of(doc.get("spec") or {})
        except (ValueError, KeyError) as exc:
            raise InputError(f"{path}:doc {number}: {exc}") from None
        nodes.append(
            ExistingNode(
                name=name,
                labels=labels,
                allocatable=allocatable,
                taints=taints,
                pods=tuple(bound.get(name, ())),
                pool=labels.get(NODEPOOL),
                ready=node_is_ready(doc) if (doc.get("status") or {}).get("conditions") else True,
            )
        )
    return nodes


def plan_json(result: Any, pools: dict[str, Any]) -> dict[str, Any]:
    claims = [
        {
            "nodePool": n.pool,
            "instanceType": n.instance_type,
            "capacityType": n.capacity_type,
            "zone": n.zone,
            "pricePerHour": round(n.price, 6),
            "pods": [p.key for p in n.pods],
            "alternatives": list(n.alternatives),
        }
        for n in result.new_nodes
    ]
    return {
        "nodeClaims": claims,
        "bindings": [{"pod": pod, "node": node} for pod, node in sorted(result.bindings.items())],
        "unschedulable": [{"pod": u.pod.key, "reason": u.reason} for u in result.unschedulable],
        "totalPricePerHour": round(result.total_price, 6),
        "lowerBoundPricePerHour": round(result.lower_bound, 6),
    }


@app.command("plan")
def plan_command(
    pods: Annotated[Path, typer.Option("--pods", help="Pending Pods (or Deployments, Jobs).")],
    nodepools: Annotated[Path, typer.Option("--nodepools", help="karpenter.sh/v1 NodePools.")],
    nodes: Annotated[
        Path | None, typer.Option("--nodes", help="Existing Nodes; Pods bound to them fill them.")
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="Instance-type CSV (default: AWS us-east-1).")
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    disruption: Annotated[
        bool,
        typer.Option(
            "--disruption", help="Show what would be disrupted now and why (needs --nodes)."
        ),
    ] = False,
    pdbs: Annotated[
        Path | None, typer.Option("--pdbs", help="PodDisruptionBudgets (with --disruption).")
    ] = None,
    spot_to_spot: Annotated[
        bool,
        typer.Option(
            "--spot-to-spot",
            help="With --disruption: replace spot nodes by cheaper spot nodes (Karpenter's "
            "SpotToSpotConsolidation feature gate, off by default).",
        ),
    ] = False,
) -> None:
    """Plan the cheapest nodes for pending pods, without launching anything.

    Existing nodes are filled first; then new nodes are chosen from the NodePools' allowed
    instance types, cheapest by expected price (spot pays for its interruption risk). Each
    node lists the other types that would also fit (the fallback on insufficient capacity);
    each pod that fits nowhere says why. The lower bound is the LP relaxation: no packing can
    cost less.
    """
    from provisioner.catalog import CatalogError, load_catalog
    from provisioner.nodepools import node_template
    from provisioner.scheduling.packer import plan

    try:
        pending, bound = load_pods(pods)
        pools = load_pools(nodepools)
        existing = load_nodes(nodes, bound) if nodes is not None else []
        types = load_catalog(catalog).instance_types
    except (InputError, CatalogError) as exc:
        raise fail(str(exc)) from None
    if disruption:
        _disruption_dry_run(nodes, existing, pools, types, pdbs, output, spot_to_spot)
        return
    templates = [node_template(p) for p in pools]
    result = plan(pending, templates, types, existing)
    data = plan_json(result, {p.metadata.name: p for p in pools})
    if output is Output.json:
        print_json(data)
        return
    table = Table(title=f"{len(pending)} pending pods, {len(types)} instance types")
    for column in ("node pool", "instance type", "capacity", "zone", "$/hour", "pods"):
        table.add_column(column, justify="right" if column in ("$/hour", "pods") else "left")
    for c in data["nodeClaims"]:
        table.add_row(
            c["nodePool"],
            c["instanceType"],
            c["capacityType"],
            c["zone"],
            f"{c['pricePerHour']:.4f}",
            str(len(c["pods"])),
        )
    out.print(table)
    out.print(
        f"total ${data['totalPricePerHour']:.4f}/hour "
        f"(lower bound ${data['lowerBoundPricePerHour']:.4f}/hour); "
        f"{len(data['bindings'])} pods fit existing nodes",
        highlight=False,
    )
    for u in data["unschedulable"]:
        err.print(f"[yellow]unschedulable[/yellow] {u['pod']}: {u['reason']}", highlight=False)


def _disruption_dry_run(
    nodes: Path | None,
    existing: list[Any],
    pools: list[Any],
    types: Any,
    pdbs: Path | None,
    output: Output,
    spot_to_spot: bool = False,
) -> None:
    """`--disruption`: the disruption planner's commands for now, and why the rest stay."""
    import time
    from dataclasses import replace

    from provisioner.disruption.inputs import cluster_state, pdb_from_manifest
    from provisioner.disruption.planner import explain
    from provisioner.disruption.report import disruption_json
    from provisioner.disruption.state import DEFAULT_OPTIONS

    if nodes is None:
        raise fail("--disruption needs --nodes (the Nodes, with their Pods in --pods)")
    try:
        node_docs = [doc for _, doc in _documents(nodes) if doc.get("kind") == "Node"]
        budgets = []
        for number, doc in _documents(pdbs) if pdbs is not None else []:
            if doc.get("kind") == "PodDisruptionBudget":
                try:
                    budgets.append(pdb_from_manifest(doc))
                except ValueError as exc:
                    raise InputError(f"{pdbs}:doc {number}: {exc}") from None
        now = time.time()  # the dry run is about this moment
        state = cluster_state(node_docs, existing, pools, types, budgets, now)
    except (InputError, ValueError) as exc:
        raise fail(str(exc)) from None
    options = replace(DEFAULT_OPTIONS, spot_to_spot=spot_to_spot)
    data = disruption_json(explain(state, now, options))
    if output is Output.json:
        print_json(data)
        return
    table = Table(title=f"disruption now ({len(existing)} nodes)")
    for column in ("method", "nodes", "replacements", "saves $/hour", "why"):
        table.add_column(column, justify="right" if column == "saves $/hour" else "left")
    for d in data["disruptions"]:
        table.add_row(
            d["method"],
            ", ".join(d["nodes"]),
            ", ".join(f"{r['instanceType']} ({r['capacityType']})" for r in d["replacements"]),
            f"{d['savingsPerHour']:.4f}",
            d["reason"],
        )
    out.print(table)
    for n in data["notCandidates"]:
        out.print(f"{n['node']}: {n['reason']}", highlight=False)
