"""NodePool -> NodeTemplate: requirements, labels, taints, weight and limits as plain data."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.api import NodePool
from provisioner.nodepools import UNLIMITED, node_template, pool_limits
from provisioner.scheduling.model import (
    NODEPOOL,
    Operator,
    Requirement,
    Resources,
    Taint,
    TaintEffect,
)


def pool(**spec: Any) -> NodePool:
    template_spec = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
        "requirements": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
            {
                "key": "karpenter.k8s.aws/instance-category",
                "operator": "In",
                "values": ["c", "m", "r"],
                "minValues": 2,
            },
            {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
        ],
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
        "startupTaints": [{"key": "example.com/init", "effect": "NoExecute"}],
    }
    return NodePool.model_validate(
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "gpu"},
            "spec": {
                "template": {"metadata": {"labels": {"team": "ml"}}, "spec": template_spec},
                **spec,
            },
        }
    )


def test_node_template_carries_the_pool_constraints() -> None:
    in_use = Resources(cpu=8000, memory=32 * 1024**3, gpu=1, pods=10)
    template = node_template(pool(weight=20), in_use)
    assert template.pool == "gpu"
    assert template.requirements == (
        Requirement("karpenter.sh/capacity-type", Operator.IN, ("spot",)),
        Requirement("karpenter.k8s.aws/instance-category", Operator.IN, ("c", "m", "r"), 2),
        Requirement("karpenter.k8s.aws/instance-generation", Operator.GT, ("5",)),
    )
    assert dict(template.labels) == {"team": "ml", NODEPOOL: "gpu"}
    assert template.taints == (Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "true"),)
    assert template.startup_taints == (Taint("example.com/init", TaintEffect.NO_EXECUTE),)
    assert template.weight == 20
    assert template.in_use == in_use


def test_no_weight_is_weight_zero_and_no_limits_is_none() -> None:
    template = node_template(pool())
    assert template.weight == 0
    assert template.limits is None
    assert template.in_use == Resources()


def test_limits_are_parsed_with_unset_dimensions_unlimited() -> None:
    template = node_template(pool(limits={"cpu": "1000", "memory": "1000Gi", "nvidia.com/gpu": 8}))
    assert template.limits == Resources(cpu=1_000_000, memory=1000 * 1024**3, gpu=8, pods=UNLIMITED)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"cpu": "500m"}, Resources(500, UNLIMITED, UNLIMITED, UNLIMITED)),
        ({"memory": "64G", "pods": "300"}, Resources(UNLIMITED, 64 * 10**9, UNLIMITED, 300)),
        # resources the scheduling core has no dimension for leave every dimension open
        ({"ephemeral-storage": "1Ti"}, Resources(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)),
        ({}, None),
    ],
)
def test_pool_limits(limits: dict[str, str], expected: Resources | None) -> None:
    assert pool_limits(limits) == expected


def test_unlimited_survives_addition() -> None:
    # the packer adds node capacity to in_use and compares with limits
    room = Resources(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
    big = Resources(10**9, 10**15, 1000, 10**6)
    assert (big + big).fits_in(room)
