"""Small hand-made instance types for the scheduling tables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisioner.scheduling.model import (
    ARCH,
    INSTANCE_TYPE,
    ON_DEMAND,
    OS,
    SPOT,
    InstanceType,
    Offering,
    Resources,
)

GIB = 2**30
ZONES = ("zone-a", "zone-b", "zone-c")
MakeType = Callable[..., InstanceType]


def make_type(
    name: str,
    cpu: int,
    memory_gib: int,
    price: float,
    gpu: int = 0,
    gpu_name: str | None = None,
    arch: str = "amd64",
    spot: float | None = None,
    spot_rate: float = 0.1,
    zones: tuple[str, ...] = ZONES,
    pods: int = 110,
    family: str | None = None,
) -> InstanceType:
    labels = {
        INSTANCE_TYPE: name,
        ARCH: arch,
        OS: "linux",
        "karpenter.k8s.aws/instance-family": family or name.split(".")[0],
        "karpenter.k8s.aws/instance-cpu": str(cpu),
    }
    if gpu:
        labels["karpenter.k8s.aws/instance-gpu-count"] = str(gpu)
        labels["karpenter.k8s.aws/instance-gpu-name"] = gpu_name or "t4"
        labels["karpenter.k8s.aws/instance-gpu-manufacturer"] = "nvidia"
    offerings = [Offering(z, ON_DEMAND, price) for z in zones]
    if spot is not None:
        offerings += [Offering(z, SPOT, spot, interruption_rate=spot_rate) for z in zones]
    capacity = Resources(cpu * 1000, memory_gib * GIB, gpu, pods)
    return InstanceType(
        name=name,
        labels=labels,
        capacity=capacity,
        allocatable=capacity,
        offerings=tuple(offerings),
        gpu_name=gpu_name if gpu else None,
    )


def standard_types() -> list[InstanceType]:
    return [
        make_type("c.large", 2, 4, 0.08, spot=0.03),
        make_type("c.xlarge", 4, 8, 0.16, spot=0.06),
        make_type("m.large", 2, 8, 0.10, spot=0.04),
        make_type("m.xlarge", 4, 16, 0.20, spot=0.08),
        make_type("m.4xlarge", 16, 64, 0.80, spot=0.30),
        make_type("r.xlarge", 4, 32, 0.25),
        make_type("a.large", 2, 8, 0.07, arch="arm64"),
        make_type("g.xlarge", 4, 16, 0.50, gpu=1, gpu_name="t4"),
        make_type("g.12xlarge", 48, 192, 3.90, gpu=4, gpu_name="t4"),
        make_type("p.24xlarge", 96, 1152, 22.0, gpu=8, gpu_name="a100"),
    ]


@pytest.fixture
def types() -> list[InstanceType]:
    return standard_types()


@pytest.fixture(name="make_type")
def make_type_fixture() -> MakeType:
    return make_type
