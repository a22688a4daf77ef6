"""Seeded pending-pod mixes for the packing tests and `bench/provision.py`.

Pods come in deployments (same requests and constraints), as they do in clusters: web
services (0.25-2 cpu, 0.5-4 GiB, some spread over zones), batch jobs (4-16 cpu, 8-64 GiB) and
GPU inference (1-4 nvidia.com/gpu with 4 cpu and 16 GiB per GPU, tolerating the GPU taint, some
pinned to a GPU model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from provisioner.scheduling.model import (
    ARCH,
    CAPACITY_TYPE,
    ON_DEMAND,
    SPOT,
    ZONE,
    LabelSelector,
    NodeTemplate,
    Operator,
    Pod,
    Requirement,
    Resources,
    Taint,
    TaintEffect,
    Toleration,
    TopologySpread,
)

GIB = 2**30
GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE)
GPU_NAME = "karpenter.k8s.aws/instance-gpu-name"


@dataclass(frozen=True)
class Mix:
    name: str
    pods: tuple[Pod, ...]
    templates: tuple[NodeTemplate, ...]


def templates(capacity_types: tuple[str, ...] = (ON_DEMAND,)) -> tuple[NodeTemplate, ...]:
    """A general pool (amd64, any non-GPU family) and a tainted NVIDIA GPU pool."""
    ct = Requirement(CAPACITY_TYPE, Operator.IN, capacity_types)
    general = NodeTemplate(
        pool="general",
        requirements=(ct, Requirement(ARCH, Operator.IN, ("amd64",))),
    )
    gpu = NodeTemplate(
        pool="gpu",
        requirements=(
            ct,
            Requirement("karpenter.k8s.aws/instance-category", Operator.IN, ("g", "p")),
            Requirement("karpenter.k8s.aws/instance-gpu-manufacturer", Operator.IN, ("nvidia",)),
        ),
        taints=(GPU_TAINT,),
        weight=10,
    )
    return (gpu, general)


def _deployment(rng: random.Random, kind: str, index: int, replicas: int) -> list[Pod]:
    app = f"{kind}-{index}"
    labels = {"app": app}
    spread: tuple[TopologySpread, ...] = ()
    selector: dict[str, str] = {}
    tolerations: tuple[Toleration, ...] = ()
    if kind == "web":
        cpu = rng.choice([250, 500, 750, 1000, 1500, 2000])
        memory = rng.choice([512, 1024, 2048, 3072, 4096]) * 2**20
        gpu = 0
        if rng.random() < 0.3:
            spread = (
                TopologySpread(1, ZONE, selector=LabelSelector(match_labels=(("app", app),))),
            )
    elif kind == "batch":
        cpu = rng.choice([4, 6, 8, 12, 16]) * 1000
        memory = rng.choice([8, 16, 24, 32, 48, 64]) * GIB
        gpu = 0
    else:
        gpu = rng.choice([1, 1, 2, 4])
        cpu = 4000 * gpu - 500
        memory = 16 * GIB * gpu - GIB
        tolerations = (Toleration("nvidia.com/gpu", "Exists"),)
        if rng.random() < 0.3:
            selector = {GPU_NAME: rng.choice(["a10g", "l4", "t4"])}
    return [
        Pod(
            name=f"{app}-{i}",
            requests=Resources(cpu, memory, gpu, 1),
            labels=labels,
            node_selector=selector,
            tolerations=tolerations,
            topology_spread=spread,
            owner=f"Deployment/{app}",
        )
        for i in range(replicas)
    ]


def generate_mix(
    pods: int,
    seed: int = 0,
    spot: bool = False,
    shares: tuple[float, float, float] = (0.6, 0.3, 0.1),
) -> Mix:
    """About `pods` pods (exactly that many) in deployments of web, batch and GPU pods."""
    rng = random.Random(seed)
    out: list[Pod] = []
    index = 0
    kinds = ("web", "batch", "gpu")
    mean_replicas = {
        "web": max(2, pods // 60),
        "batch": max(1, pods // 150),
        "gpu": max(1, pods // 400),
    }
    while len(out) < pods:
        kind = rng.choices(kinds, weights=shares)[0]
        replicas = max(1, int(rng.expovariate(1 / mean_replicas[kind])))
        out.extend(_deployment(rng, kind, index, min(replicas, pods - len(out))))
        index += 1
    capacity = (SPOT, ON_DEMAND) if spot else (ON_DEMAND,)
    name = f"{pods} pods{' spot' if spot else ''} seed {seed}"
    return Mix(name, tuple(out), templates(capacity))
